# frozen_string_literal: true

# Tasker's Ruby worker: step handler base class, typed errors, the hosted worker runtime and a REST
# client. The native extension (bindings/ruby) holds the core's StepContext and runtime.
require "tasker_core/version"
require "tasker_core/errors"
require "tasker_core/tasker_native"
require "tasker_core/task_request"
require "tasker_core/step_context"
require "tasker_core/step_handler"
require "tasker_core/execution"
require "tasker_core/registry"
require "tasker_core/observability"
require "tasker_core/events"
require "tasker_core/worker"
require "tasker_core/client"

module TaskerCore
end
