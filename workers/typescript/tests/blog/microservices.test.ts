/**
 * Unit tests of the §3 microservices user registration handlers (`examples/blog/microservices`), a
 * port of the Python suite `workers/python/tests/test_blog_microservices.py`.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { StepHandler, StepHandlerResult } from "../../src/index";
import { buildContext, runHandler } from "../../src/testing";
import {
  CreateUserAccountHandler,
  ENTERPRISE,
  FREE,
  InitializePreferencesHandler,
  PRO,
  SendWelcomeSequenceHandler,
  SetupBillingProfileHandler,
  UpdateUserStatusHandler,
  welcomeEmail,
} from "../../examples/blog/microservices/step_handlers";
import {
  Json,
  MASKED,
  TS,
  assertJsonEqual,
  err,
  examplesDir,
  masked,
  ok as okResult,
  permanentJson as perm,
  resolveCallable,
  templateCallables,
  ts,
} from "./blog_assertions";

function referenceInput(): Json {
  return { user_info: { email: "sarah@example.com", name: "Sarah Johnson", plan: "pro", source: "web" } };
}

function ctx(step: string, input: Json, deps: Json) {
  return buildContext({
    stepName: step,
    namespace: "microservices_ts",
    attempt: 1,
    maxAttempts: 3,
    input,
    dependencyResults: deps,
    config: { scenario: "user_registration" },
  });
}

async function ok(r: Promise<StepHandlerResult>): Promise<Json> {
  return okResult(await r);
}

async function fail(r: Promise<StepHandlerResult>): Promise<Json> {
  return err(await r);
}

function create(input: Json): Promise<StepHandlerResult> {
  return runHandler(new CreateUserAccountHandler(), ctx("create_user_account", input, {}));
}

/** Runs the whole DAG in process on `input` and returns the five results. */
async function runChain(input: Json): Promise<Json[]> {
  const user = await ok(create(input));
  let deps: Json = { create_user_account: user };
  const billing = await ok(runHandler(new SetupBillingProfileHandler(), ctx("setup_billing_profile", input, deps)));
  const prefs = await ok(runHandler(new InitializePreferencesHandler(), ctx("initialize_preferences", input, deps)));
  deps = { create_user_account: user, setup_billing_profile: billing, initialize_preferences: prefs };
  const welcome = await ok(runHandler(new SendWelcomeSequenceHandler(), ctx("send_welcome_sequence", input, deps)));
  deps = { ...deps, send_welcome_sequence: welcome };
  const status = await ok(runHandler(new UpdateUserStatusHandler(), ctx("update_user_status", input, deps)));
  return [user, billing, prefs, welcome, status];
}

// ---- §3.1 create_user_account ----

describe("create_user_account", () => {
  test("the reference input creates a pro user with a null phone", async () => {
    const r = await ok(create(referenceInput()));
    ts(r.created_at);
    assertJsonEqual(
      masked(r, [
        ["user_id", "user_[0-9a-f]{12}"],
        ["created_at", TS],
      ]),
      {
        user_id: MASKED,
        email: "sarah@example.com",
        name: "Sarah Johnson",
        plan: "pro",
        phone: null,
        source: "web",
        status: "created",
        created_at: MASKED,
      },
    );
  });

  for (const extra of [{}, { plan: null, source: null }, { plan: " ", source: "" }]) {
    test(`plan and source default to free and web when blank (${JSON.stringify(extra)})`, async () => {
      const r = await ok(create({ user_info: { email: "amy@example.org", name: "Amy", ...extra } }));
      assert.deepStrictEqual([r.plan, r.source], ["free", "web"]);
    });
  }

  test("phone and source are kept when given, and a blank phone is null", async () => {
    let r = await ok(
      create({
        user_info: { email: "bo@example.com", name: "Bo", phone: "+1-555-0100", source: "mobile", plan: "enterprise" },
      }),
    );
    assert.equal(r.phone, "+1-555-0100");
    assert.equal(r.source, "mobile");
    assert.equal(r.plan, "enterprise");
    r = await ok(create({ user_info: { email: "bo@example.com", name: "Bo", phone: "  " } }));
    assert.equal(r.phone, null);
  });

  test("a non-string phone is written as null", async () => {
    const r = await ok(create({ user_info: { email: "bo@example.com", name: "Bo", phone: 5550100 } }));
    assert.equal(r.phone, null);
  });

  test("a plan outside the table is kept as given", async () => {
    const r = await ok(create({ user_info: { email: "g@example.com", name: "G", plan: "gold" } }));
    assert.equal(r.plan, "gold");
  });

  for (const plan of [null, "free"]) {
    test(`the existing user with the same name and plan is an idempotent success (plan ${String(plan)})`, async () => {
      const input = { user_info: { email: "existing@example.com", name: "Existing User", plan, phone: "+1-555-0199" } };
      assertJsonEqual(await ok(create(input)), {
        user_id: "user_existing_001",
        email: "existing@example.com",
        plan: "free",
        status: "already_exists",
        created_at: "2025-01-01T00:00:00.000Z",
      });
    });
  }

  test("the existing user with a plan outside the table counts as free", async () => {
    const input = { user_info: { email: "existing@example.com", name: "Existing User", plan: "gold" } };
    assert.equal((await ok(create(input))).status, "already_exists");
  });

  test("the existing email matches case-sensitively", async () => {
    const input = { user_info: { email: "Existing@example.com", name: "Someone Else" } };
    assert.equal((await ok(create(input))).status, "created");
  });

  const missingEmail: Json[] = [
    {},
    { user_info: null },
    { user_info: {} },
    { user_info: { name: "Sarah" } },
    { user_info: { email: " \t", name: "Sarah" } },
    { user_info: { email: null, name: "" } },
    { user_info: "sarah@example.com" },
  ];
  for (const input of missingEmail) {
    test(`a missing email fails permanently (${JSON.stringify(input)})`, async () => {
      assertJsonEqual(await fail(create(input)), perm("MISSING_EMAIL", "Email is required but was not provided"));
    });
  }

  const missingName: Json[] = [
    { user_info: { email: "sarah@example.com" } },
    { user_info: { email: "sarah@example.com", name: "   " } },
    { user_info: { email: "not an email", name: null } },
  ];
  for (const input of missingName) {
    test(`a missing name fails permanently before the email format check (${JSON.stringify(input)})`, async () => {
      assertJsonEqual(await fail(create(input)), perm("MISSING_NAME", "Name is required but was not provided"));
    });
  }

  const invalidEmails = [
    "sarah@localhost",
    "sarah@example.com\n",
    "sarah johnson@example.com",
    "o'brien@example.com",
    "sarah@example.c0m",
    "sarah@@example.com",
    "@example.com",
    "sarah@.example.com",
    "sarah@example.com.",
    "s\u00e4rah@example.com",
  ];
  for (const email of invalidEmails) {
    test(`an invalid email format fails permanently with the email in the message (${JSON.stringify(email)})`, async () => {
      const input = { user_info: { email, name: "Sarah" } };
      assertJsonEqual(await fail(create(input)), perm("INVALID_EMAIL_FORMAT", `Invalid email format: ${email}`));
    });
  }

  test("a non-string email is invalid and written as compact JSON", async () => {
    const input = { user_info: { email: { address: "a@b.co" }, name: "Sarah" } };
    assertJsonEqual(await fail(create(input)), perm("INVALID_EMAIL_FORMAT", 'Invalid email format: {"address":"a@b.co"}'));
  });

  for (const email of ["first.last+tag@mail.example.co", "a_b-c@ex-ample.io", "X@Y.Z", "1@2.ab"]) {
    test(`the email pattern accepts plus, dots, dashes and subdomains (${email})`, async () => {
      assert.equal((await ok(create({ user_info: { email, name: "N" } }))).email, email);
    });
  }

  const conflicts: Json[] = [
    { email: "existing@example.com", name: "Someone Else" },
    { email: "existing@example.com", name: "existing user", plan: "free" },
    { email: "existing@example.com", name: "Existing User", plan: "pro" },
    { email: "existing@example.com", name: "Existing User", plan: "enterprise" },
  ];
  for (const info of conflicts) {
    test(`the existing email with another name or plan is a user conflict (${JSON.stringify(info)})`, async () => {
      assertJsonEqual(
        await fail(create({ user_info: info })),
        perm("USER_CONFLICT", "User with email existing@example.com already exists with different data"),
      );
    });
  }
});

// ---- §3.2 setup_billing_profile ----

function user(plan: Json): Json {
  return {
    create_user_account: {
      user_id: "user_0123456789ab",
      email: "sarah@example.com",
      name: "Sarah Johnson",
      plan,
      phone: null,
      source: "web",
      status: "created",
      created_at: "2026-01-02T03:04:05.678Z",
    },
  };
}

function billing(plan: Json): Promise<StepHandlerResult> {
  return runHandler(new SetupBillingProfileHandler(), ctx("setup_billing_profile", {}, user(plan)));
}

describe("setup_billing_profile", () => {
  test("pro billing costs 29.99 monthly and bills again in 30 days", async () => {
    const r = await ok(billing("pro"));
    const created = ts(r.created_at);
    const next = ts(r.next_billing_date);
    assert.equal(next.getTime() - created.getTime(), 30 * 86_400_000, "both derive from one clock reading");
    assertJsonEqual(
      masked(r, [
        ["billing_id", "billing_[0-9a-f]{12}"],
        ["created_at", TS],
        ["next_billing_date", TS],
      ]),
      {
        billing_id: MASKED,
        user_id: "user_0123456789ab",
        plan: "pro",
        price: 29.99,
        currency: "USD",
        billing_cycle: "monthly",
        features: ["basic_features", "advanced_analytics"],
        status: "active",
        next_billing_date: MASKED,
        created_at: MASKED,
      },
    );
  });

  test("enterprise billing costs 299.99 with four features", async () => {
    const r = await ok(billing("enterprise"));
    assertJsonEqual(r.price, 299.99);
    assert.deepStrictEqual(r.features, ["basic_features", "advanced_analytics", "priority_support", "custom_integrations"]);
    assert.equal(r.plan, "enterprise");
  });

  test("the free plan skips billing and completes", async () => {
    assertJsonEqual(await ok(billing("free")), {
      user_id: "user_0123456789ab",
      plan: "free",
      billing_required: false,
      status: "skipped_free_plan",
      message: "Free plan users do not require billing setup",
    });
  });

  test("a plan outside the table skips billing with the plan as given", async () => {
    const r = await ok(billing("gold"));
    assert.equal(r.status, "skipped_free_plan");
    assert.equal(r.plan, "gold");
  });

  for (const deps of [{}, { create_user_account: {} }, { create_user_account: { user_id: " ", plan: "pro" } }]) {
    test(`billing without a user id is missing user data (${JSON.stringify(deps)})`, async () => {
      const r = runHandler(new SetupBillingProfileHandler(), ctx("setup_billing_profile", {}, deps));
      assertJsonEqual(await fail(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"));
    });
  }
});

// ---- §3.3 initialize_preferences ----

function prefs(plan: Json, input: Json): Promise<StepHandlerResult> {
  return runHandler(new InitializePreferencesHandler(), ctx("initialize_preferences", input, user(plan)));
}

describe("initialize_preferences", () => {
  test("pro preferences are the eight pro defaults", async () => {
    const r = await ok(prefs("pro", referenceInput()));
    assert.equal(r.created_at, r.updated_at, "one clock reading");
    ts(r.created_at);
    assertJsonEqual(
      masked(r, [
        ["preferences_id", "prefs_[0-9a-f]{12}"],
        ["created_at", TS],
        ["updated_at", TS],
      ]),
      {
        preferences_id: MASKED,
        user_id: "user_0123456789ab",
        plan: "pro",
        preferences: {
          email_notifications: true,
          marketing_emails: true,
          product_updates: true,
          weekly_digest: true,
          theme: "dark",
          language: "en",
          timezone: "UTC",
          api_notifications: true,
        },
        defaults_applied: 8,
        customizations: 0,
        status: "active",
        created_at: MASKED,
        updated_at: MASKED,
      },
    );
  });

  test("free and enterprise defaults have seven and ten keys in the spec order", async () => {
    let r = await ok(prefs("free", {}));
    assertJsonEqual(r.preferences, {
      email_notifications: true,
      marketing_emails: false,
      product_updates: true,
      weekly_digest: false,
      theme: "light",
      language: "en",
      timezone: "UTC",
    });
    assert.deepStrictEqual(Object.keys(r.preferences), [
      "email_notifications",
      "marketing_emails",
      "product_updates",
      "weekly_digest",
      "theme",
      "language",
      "timezone",
    ]);
    assertJsonEqual(r.defaults_applied, 7);
    r = await ok(prefs("enterprise", {}));
    assertJsonEqual(r.preferences, {
      email_notifications: true,
      marketing_emails: true,
      product_updates: true,
      weekly_digest: true,
      theme: "dark",
      language: "en",
      timezone: "UTC",
      api_notifications: true,
      audit_logs: true,
      advanced_reports: true,
    });
    assertJsonEqual(r.defaults_applied, 10);
    r = await ok(prefs("gold", {}));
    assert.deepStrictEqual([r.defaults_applied, r.plan], [7, "gold"]);
  });

  test("custom preferences replace or add keys and are counted", async () => {
    const input = { user_info: { preferences: { theme: "blue", beta_features: true, digest: null } } };
    const r = await ok(prefs("free", input));
    assert.equal(r.preferences.theme, "blue");
    assert.equal(r.preferences.beta_features, true);
    assert.ok("digest" in r.preferences && r.preferences.digest === null, "custom values are taken as they are");
    assert.equal(Object.keys(r.preferences).length, 9);
    assertJsonEqual(r.defaults_applied, 7);
    assertJsonEqual(r.customizations, 3);
  });

  for (const input of [{}, { user_info: {} }, { user_info: { preferences: {} } }, { user_info: { preferences: "dark" } }]) {
    test(`blank custom preferences count as none (${JSON.stringify(input)})`, async () => {
      const r = await ok(prefs("pro", input));
      assertJsonEqual([r.defaults_applied, r.customizations], [8, 0]);
    });
  }

  test("preferences without a user id are missing user data", async () => {
    const r = runHandler(
      new InitializePreferencesHandler(),
      ctx("initialize_preferences", referenceInput(), { create_user_account: { user_id: null, plan: "pro" } }),
    );
    assertJsonEqual(await fail(r), perm("MISSING_USER_DATA", "User data not found from create_user_account step"));
  });
});

// ---- §3.4 send_welcome_sequence ----

function welcomeDeps(plan: Json, preferences: Json): Json {
  const d = user(plan);
  d.setup_billing_profile = { billing_id: "billing_0123456789ab", next_billing_date: "2026-02-01T03:04:05.678Z" };
  d.initialize_preferences = { preferences };
  return d;
}

function welcome(deps: Json): Promise<StepHandlerResult> {
  return runHandler(new SendWelcomeSequenceHandler(), ctx("send_welcome_sequence", {}, deps));
}

describe("send_welcome_sequence", () => {
  test("the pro welcome goes by email and in-app", async () => {
    const r = await ok(welcome(welcomeDeps("pro", { email_notifications: true })));
    ts(r.sent_at);
    assertJsonEqual(
      masked(r, [
        ["welcome_sequence_id", "welcome_[0-9a-f]{12}"],
        ["sent_at", TS],
      ]),
      {
        user_id: "user_0123456789ab",
        plan: "pro",
        channels_used: ["email", "in_app"],
        messages_sent: 2,
        welcome_sequence_id: MASKED,
        status: "sent",
        sent_at: MASKED,
      },
    );
  });

  test("email is skipped only when email_notifications is exactly false", async () => {
    let r = await ok(welcome(welcomeDeps("free", { email_notifications: false })));
    assertJsonEqual([r.channels_used, r.messages_sent], [["in_app"], 1]);
    for (const v of ["false", 0, null]) {
      r = await ok(welcome(welcomeDeps("free", { email_notifications: v, theme: "light" })));
      assert.deepStrictEqual(r.channels_used, ["email", "in_app"], JSON.stringify(v));
    }
  });

  test("the enterprise welcome adds sms as the third channel", async () => {
    let r = await ok(welcome(welcomeDeps("enterprise", { email_notifications: true })));
    assert.deepStrictEqual(r.channels_used, ["email", "in_app", "sms"]);
    assertJsonEqual(r.messages_sent, 3);
    r = await ok(welcome(welcomeDeps("enterprise", { email_notifications: false })));
    assert.deepStrictEqual(r.channels_used, ["in_app", "sms"]);
    assertJsonEqual(r.messages_sent, 2);
  });

  test("the welcome plan defaults to free when blank", async () => {
    const deps = welcomeDeps(null, { theme: "light" });
    delete deps.create_user_account.plan;
    const r = await ok(welcome(deps));
    assert.equal(r.plan, "free");
    assert.deepStrictEqual(r.channels_used, ["email", "in_app"]);
  });

  test("the welcome metadata names the plan's subject", async () => {
    const r = await welcome(welcomeDeps("enterprise", { email_notifications: true }));
    assert.equal((r.metadata as Json).email_subject, "Welcome to Enterprise!");
  });

  const all = (): Json => welcomeDeps("pro", { theme: "dark" });
  const cases: Array<[Json, string]> = [
    [{}, "create_user_account, setup_billing_profile, initialize_preferences"],
    [
      {
        create_user_account: all().create_user_account,
        setup_billing_profile: {},
        initialize_preferences: all().initialize_preferences,
      },
      "setup_billing_profile",
    ],
    [
      { create_user_account: null, setup_billing_profile: all().setup_billing_profile },
      "create_user_account, initialize_preferences",
    ],
  ];
  for (const [deps, names] of cases) {
    test(`the welcome without dependency results names the blank ones in order (${names})`, async () => {
      assertJsonEqual(await fail(welcome(deps)), perm("MISSING_DEPENDENCY_DATA", `Missing results from steps: ${names}`));
    });
  }

  test("the welcome email body is blocks separated by blank lines", () => {
    const billingResult = { billing_id: "billing_0123456789ab", next_billing_date: "2026-02-01T03:04:05.678Z" };
    let m = welcomeEmail(PRO, "user_0123456789ab", billingResult);
    assert.equal(m.subject, "Welcome to Pro!");
    assert.equal(
      m.body,
      "Thanks for upgrading to Pro\n\nHere are your account highlights:\n- Access advanced analytics\n" +
        "- Priority support\n- API access\n- Custom integrations\n\nBilling ID: billing_0123456789ab\n" +
        "Next billing date: 2026-02-01T03:04:05.678Z\n\nConsider Enterprise for dedicated support\n\n" +
        "User ID: user_0123456789ab",
    );
    m = welcomeEmail(FREE, "user_existing_001", null);
    assert.equal(m.subject, "Welcome to Our Platform!");
    assert.equal(
      m.body,
      "Thanks for joining us\n\nHere are your account highlights:\n- Get started with basic features\n" +
        "- Explore your dashboard\n- Join our community\n\nUpgrade to Pro for advanced features\n\n" +
        "User ID: user_existing_001",
    );
    m = welcomeEmail(ENTERPRISE, "user_0123456789ab", billingResult);
    assert.equal(m.subject, "Welcome to Enterprise!");
    assert.ok(m.body.startsWith("Welcome to your Enterprise account\n\n"));
    assert.ok(m.body.endsWith("Next billing date: 2026-02-01T03:04:05.678Z\n\nUser ID: user_0123456789ab"));
  });
});

// ---- §3.5 update_user_status and the whole DAG ----

describe("update_user_status", () => {
  test("the reference input runs through with the worked numbers", async () => {
    const [userR, billingR, prefsR, welcomeR, status] = await runChain(referenceInput());
    assert.deepStrictEqual([userR.status, userR.plan, userR.source, userR.phone], ["created", "pro", "web", null]);
    assertJsonEqual(billingR.price, 29.99);
    assert.equal(billingR.currency, "USD");
    assert.equal(billingR.billing_cycle, "monthly");
    assert.deepStrictEqual(billingR.features, ["basic_features", "advanced_analytics"]);
    assert.equal(billingR.status, "active");
    assert.equal(billingR.user_id, userR.user_id);
    assert.equal(Object.keys(prefsR.preferences).length, 8);
    assert.equal(prefsR.preferences.theme, "dark");
    assertJsonEqual([prefsR.defaults_applied, prefsR.customizations], [8, 0]);
    assert.deepStrictEqual(welcomeR.channels_used, ["email", "in_app"]);
    assertJsonEqual(welcomeR.messages_sent, 2);
    assert.equal(welcomeR.user_id, userR.user_id);

    assert.equal(status.activation_timestamp, status.registration_summary.registration_completed_at);
    ts(status.activation_timestamp);
    const summary = masked(status.registration_summary, [["registration_completed_at", TS]]);
    const userId = userR.user_id;
    assertJsonEqual(
      { ...masked(status, [["activation_timestamp", TS]]), registration_summary: summary },
      {
        user_id: userId,
        status: "active",
        plan: "pro",
        registration_summary: {
          user_id: userId,
          email: "sarah@example.com",
          plan: "pro",
          registration_status: "complete",
          billing_id: billingR.billing_id,
          next_billing_date: billingR.next_billing_date,
          preferences_count: 8,
          welcome_sent: true,
          notification_channels: ["email", "in_app"],
          user_created_at: userR.created_at,
          registration_completed_at: MASKED,
        },
        activation_timestamp: MASKED,
        all_services_coordinated: true,
        services_completed: ["user_service", "billing_service", "preferences_service", "notification_service"],
      },
    );
  });

  test("the existing free user's summary has no billing keys", async () => {
    const input = {
      user_info: {
        email: "existing@example.com",
        name: "Existing User",
        preferences: { email_notifications: false, theme: "dark" },
      },
    };
    const [, billingR, prefsR, welcomeR, status] = await runChain(input);
    assert.equal(billingR.status, "skipped_free_plan");
    assertJsonEqual(prefsR.customizations, 2);
    assert.deepStrictEqual(welcomeR.channels_used, ["in_app"]);
    const summary = status.registration_summary;
    assert.deepStrictEqual(Object.keys(summary).sort(), [
      "email",
      "notification_channels",
      "plan",
      "preferences_count",
      "registration_completed_at",
      "registration_status",
      "user_created_at",
      "user_id",
      "welcome_sent",
    ]);
    assert.equal(summary.user_id, "user_existing_001");
    assert.equal(summary.user_created_at, "2025-01-01T00:00:00.000Z");
    assertJsonEqual(summary.preferences_count, 7);
    assert.deepStrictEqual(summary.notification_channels, ["in_app"]);
    assert.equal(status.plan, "free");
  });

  test("an enterprise registration counts ten preferences and three channels", async () => {
    const input = { user_info: { email: "cto@bigcorp.example", name: "C. T. O.", plan: "enterprise" } };
    const [, billingR, , , status] = await runChain(input);
    const summary = status.registration_summary;
    assertJsonEqual(summary.preferences_count, 10);
    assert.deepStrictEqual(summary.notification_channels, ["email", "in_app", "sms"]);
    assert.equal(summary.billing_id, billingR.billing_id);
    assertJsonEqual(billingR.price, 299.99);
  });

  const all = (): Json => welcomeDeps("pro", { theme: "dark" });
  const cases: Array<[Json, string]> = [
    [{}, "create_user_account, setup_billing_profile, initialize_preferences, send_welcome_sequence"],
    [
      {
        create_user_account: all().create_user_account,
        setup_billing_profile: all().setup_billing_profile,
        initialize_preferences: {},
        send_welcome_sequence: { channels_used: ["email", "in_app"] },
      },
      "initialize_preferences",
    ],
    [
      {
        create_user_account: all().create_user_account,
        setup_billing_profile: null,
        initialize_preferences: all().initialize_preferences,
      },
      "setup_billing_profile, send_welcome_sequence",
    ],
  ];
  for (const [deps, names] of cases) {
    test(`the status without earlier results is an incomplete workflow in DAG order (${names})`, async () => {
      const r = runHandler(new UpdateUserStatusHandler(), ctx("update_user_status", {}, deps));
      assertJsonEqual(
        await fail(r),
        perm("INCOMPLETE_WORKFLOW", `Cannot complete registration: missing results from steps: ${names}`),
      );
    });
  }
});

// ---- callables ----

describe("microservices callables", () => {
  test("every step resolves to the callable its TypeScript template names", () => {
    const callables = templateCallables("user_registration.yaml");
    assert.deepStrictEqual(
      callables,
      ["create_user_account", "setup_billing_profile", "initialize_preferences", "send_welcome_sequence", "update_user_status"].map(
        (step) =>
          "Microservices.StepHandlers." +
          step
            .split("_")
            .map((p) => p[0].toUpperCase() + p.slice(1))
            .join("") +
          "Handler",
      ),
    );
    for (const callable of callables) {
      assert.ok(resolveCallable(examplesDir("blog"), callable) instanceof StepHandler, callable);
    }
  });

  test("a handler instance keeps no per-attempt state", async () => {
    const handler = new CreateUserAccountHandler();
    const keys = Object.keys(handler);
    const first = await ok(runHandler(handler, ctx("create_user_account", referenceInput(), {})));
    const second = await ok(runHandler(handler, ctx("create_user_account", referenceInput(), {})));
    assert.notEqual(first.user_id, second.user_id);
    assert.deepStrictEqual(Object.keys(handler), keys);
  });
});
