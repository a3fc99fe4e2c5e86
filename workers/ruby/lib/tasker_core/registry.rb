# frozen_string_literal: true

module TaskerCore
  # Resolves template callables (+Ecommerce::StepHandlers::ValidateCartHandler+) to handlers.
  #
  # A callable registered with {#register} wins; any other is loaded on first use: if the constant
  # is not defined yet, the file named by its namespace (+ecommerce/step_handlers+, each segment
  # underscored) is required from $LOAD_PATH, then the constant must name a
  # {StepHandler::Base} subclass, created with no arguments. Thread-safe.
  class Registry
    def initialize
      @handlers = {}
      @lock = Mutex.new
    end

    def register(callable_name, handler)
      instance = handler.is_a?(Class) ? handler.new : handler
      unless StepHandler::Base.handler_class?(instance.class)
        raise TypeError, "#{callable_name}: #{instance.class} is not a TaskerCore::StepHandler::Base"
      end

      @lock.synchronize { @handlers[callable_name] = instance }
    end

    def resolve(callable_name)
      @lock.synchronize { @handlers[callable_name] ||= load_handler(callable_name) }
    end

    # "CustomerSuccess::StepHandlers" -> "customer_success/step_handlers".
    def self.feature_for(namespace)
      namespace.split("::").map do |segment|
        segment.gsub(/([A-Z]+)([A-Z][a-z])/, '\1_\2').gsub(/([a-z\d])([A-Z])/, '\1_\2').downcase
      end.join("/")
    end

    private

    def load_handler(callable_name)
      segments = callable_name.split("::")
      unless segments.size >= 2 && segments.all? { |s| s.match?(/\A[A-Z][A-Za-z0-9_]*\z/) }
        raise Errors::HandlerNotFoundError.new(callable_name, "expected Module::HandlerClass")
      end

      namespace = segments[0..-2].join("::")
      cls = constant(callable_name)
      if cls.nil?
        feature = self.class.feature_for(namespace)
        begin
          require feature
        rescue LoadError => e
          raise Errors::HandlerNotFoundError.new(callable_name, "cannot require #{feature}: #{e.message}")
        rescue StandardError, ScriptError => e
          raise Errors::HandlerNotFoundError.new(callable_name, "loading #{feature} failed: #{e.class}: #{e.message}")
        end
        cls = constant(callable_name)
        raise Errors::HandlerNotFoundError.new(callable_name, "#{feature} does not define #{callable_name}") if cls.nil?
      end
      unless StepHandler::Base.handler_class?(cls)
        raise Errors::HandlerNotFoundError.new(callable_name, "#{callable_name} is not a TaskerCore::StepHandler::Base subclass")
      end

      begin
        cls.new
      rescue StandardError => e
        raise Errors::HandlerNotFoundError.new(callable_name, "#{callable_name}.new failed: #{e.class}: #{e.message}")
      end
    end

    def constant(name)
      Object.const_get(name)
    rescue NameError
      nil
    end
  end
end
