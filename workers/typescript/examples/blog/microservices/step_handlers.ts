/**
 * Handlers of spec §3 microservices user registration (`microservices_<sfx>/user_registration`):
 * `create_user_account` fans out to `setup_billing_profile` and `initialize_preferences`, which
 * converge on `send_welcome_sequence`, then `update_user_status`. Outside services (user store,
 * billing, mail) are simulated inline with the mock data of §3.0.
 *
 * A port of `workers/python/examples/blog/microservices/step_handlers.py` (itself a port of
 * `workers/rust/src/handlers/blog/microservices.rs`), with the same readings where the spec is
 * open: a blank `plan` / `source` takes its default (`free` / `web`), a plan outside the table is
 * kept as given in results but treated as `free` everywhere else, and a non-string or blank `phone`
 * is written as null. Money uses decimal.js. Every handler reads the clock once per attempt.
 */

import { PermanentError, StepContext, StepHandlerResult } from "@tasker/worker";
import {
  BlogHandler,
  Dec,
  Now,
  compilePattern,
  field,
  hasKey,
  isBlank,
  isObject,
  isoMs,
  jsonText,
  moneyJson,
  randomHex,
  setKey,
} from "../blog_support";

export const CREATE_USER_ACCOUNT = "create_user_account";
export const SETUP_BILLING_PROFILE = "setup_billing_profile";
export const INITIALIZE_PREFERENCES = "initialize_preferences";
export const SEND_WELCOME_SEQUENCE = "send_welcome_sequence";

/** §3.1 rule 3 (matched against the whole value). */
export const EMAIL_PATTERN = "[A-Za-z0-9_+.-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]+";
const EMAIL = compilePattern(EMAIL_PATTERN);

// The mock user store's one existing user (§3.0).
const EXISTING_EMAIL = "existing@example.com";
const EXISTING_USER_ID = "user_existing_001";
const EXISTING_NAME = "Existing User";
const EXISTING_CREATED_AT = "2025-01-01T00:00:00.000Z";

// The plans of §3.0. Any other plan value (or none) is treated as FREE.
export const FREE = "free";
export const PRO = "pro";
export const ENTERPRISE = "enterprise";
export type Plan = typeof FREE | typeof PRO | typeof ENTERPRISE;

const PRICES: Record<Plan, Dec> = { free: new Dec("0"), pro: new Dec("29.99"), enterprise: new Dec("299.99") };

const FEATURES: Record<Plan, readonly string[]> = {
  free: ["basic_features"],
  pro: ["basic_features", "advanced_analytics"],
  enterprise: ["basic_features", "advanced_analytics", "priority_support", "custom_integrations"],
};

interface WelcomeTemplate {
  readonly subject: string;
  readonly greeting: string;
  readonly highlights: readonly string[];
  readonly upgradePrompt: string | null;
}

/** The welcome templates of §3.0. */
const WELCOME: Record<Plan, WelcomeTemplate> = {
  free: {
    subject: "Welcome to Our Platform!",
    greeting: "Thanks for joining us",
    highlights: ["Get started with basic features", "Explore your dashboard", "Join our community"],
    upgradePrompt: "Upgrade to Pro for advanced features",
  },
  pro: {
    subject: "Welcome to Pro!",
    greeting: "Thanks for upgrading to Pro",
    highlights: ["Access advanced analytics", "Priority support", "API access", "Custom integrations"],
    upgradePrompt: "Consider Enterprise for dedicated support",
  },
  enterprise: {
    subject: "Welcome to Enterprise!",
    greeting: "Welcome to your Enterprise account",
    highlights: ["Dedicated account manager", "Custom SLA", "Advanced security features", "Priority support 24/7"],
    upgradePrompt: null,
  },
};

const SERVICES_COMPLETED = ["user_service", "billing_service", "preferences_service", "notification_service"];

const SMS_NUMBER = "+1-555-ENTERPRISE";
const SMS_TEXT = "Welcome to Enterprise! Your account manager will contact you soon.";

/** The §3.0 plan a value stands for: `pro` and `enterprise` as such, anything else free. */
export function planOf(value: unknown): Plan {
  return value === PRO || value === ENTERPRISE ? value : FREE;
}

export function isPaid(plan: Plan): boolean {
  return plan !== FREE;
}

/** The plan's default preferences, in the spec's key order. */
export function defaultPreferences(plan: Plan): Array<[string, unknown]> {
  const paid = isPaid(plan);
  const prefs: Array<[string, unknown]> = [
    ["email_notifications", true],
    ["marketing_emails", paid],
    ["product_updates", true],
    ["weekly_digest", paid],
    ["theme", paid ? "dark" : "light"],
    ["language", "en"],
    ["timezone", "UTC"],
  ];
  if (paid) {
    prefs.push(["api_notifications", true]);
  }
  if (plan === ENTERPRISE) {
    prefs.push(["audit_logs", true]);
    prefs.push(["advanced_reports", true]);
  }
  return prefs;
}

/**
 * A value as message text: absent (undefined) as `""`, strings as they are, anything else (null
 * included) as compact JSON.
 */
function text(value: unknown): string {
  if (value === undefined) {
    return "";
  }
  if (typeof value === "string") {
    return value;
  }
  return jsonText(value);
}

/** `value` when it is not blank, else `fallback`. */
function orDefault(value: unknown, fallback: string): unknown {
  return isBlank(value) ? fallback : value;
}

/** An object input or dependency value; blank or not an object gives `{}`. */
function objectOrEmpty(value: unknown): Record<string, unknown> {
  return isObject(value) ? value : {};
}

/** The names among `steps` whose dependency result is blank, in the given order. */
function blankResults(context: StepContext, steps: readonly string[]): string[] {
  return steps.filter((s) => isBlank(context.getDependencyResult(s)));
}

function missingUserData(): PermanentError {
  return new PermanentError("User data not found from create_user_account step", { errorCode: "MISSING_USER_DATA" });
}

/** The welcome email of §3.0: subject and body (blocks separated by blank lines). */
export function welcomeEmail(plan: Plan, userId: string, billing: unknown): { subject: string; body: string } {
  const t = WELCOME[plan];
  const blocks = [t.greeting, ["Here are your account highlights:", ...t.highlights.map((h) => `- ${h}`)].join("\n")];
  if (isPaid(plan)) {
    const billingField = (key: string): string => text(field(billing, key));
    blocks.push(`Billing ID: ${billingField("billing_id")}\nNext billing date: ${billingField("next_billing_date")}`);
  }
  if (t.upgradePrompt !== null) {
    blocks.push(t.upgradePrompt);
  }
  blocks.push(`User ID: ${userId}`);
  return { subject: t.subject, body: blocks.join("\n\n") };
}

/** §3.1: validates the user and creates the account, or recognises the existing user. */
export class CreateUserAccountHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const userInfo = objectOrEmpty(context.getInput("user_info"));
    const email = field(userInfo, "email");
    const name = field(userInfo, "name");
    if (isBlank(email)) {
      throw new PermanentError("Email is required but was not provided", { errorCode: "MISSING_EMAIL" });
    }
    if (isBlank(name)) {
      throw new PermanentError("Name is required but was not provided", { errorCode: "MISSING_NAME" });
    }
    if (!(typeof email === "string" && EMAIL.test(email))) {
      throw new PermanentError(`Invalid email format: ${text(email)}`, { errorCode: "INVALID_EMAIL_FORMAT" });
    }
    const plan = orDefault(field(userInfo, "plan"), FREE);
    const source = orDefault(field(userInfo, "source"), "web");

    if (email === EXISTING_EMAIL) {
      // A plan outside the table is treated as free, which is the stored plan.
      if (name !== EXISTING_NAME || planOf(plan) !== FREE) {
        throw new PermanentError(`User with email ${email} already exists with different data`, {
          errorCode: "USER_CONFLICT",
        });
      }
      context.logger.info(`user ${EXISTING_USER_ID} already exists`);
      return this.success(
        {
          user_id: EXISTING_USER_ID,
          email,
          plan: FREE,
          status: "already_exists",
          created_at: EXISTING_CREATED_AT,
        },
        { service: "user_service", operation: "lookup_user", idempotent: true },
      );
    }

    const now = new Now();
    const userId = `user_${randomHex(12)}`;
    const phoneValue = field(userInfo, "phone");
    const phone = typeof phoneValue === "string" && !isBlank(phoneValue) ? phoneValue : null;
    context.logger.info(`created user ${userId}`);
    return this.success(
      {
        user_id: userId,
        email,
        name,
        plan,
        phone,
        source,
        status: "created",
        created_at: now.iso(),
      },
      { service: "user_service", operation: "create_user", idempotent: false },
    );
  }
}

/** §3.2: a billing profile for paid plans; free plans skip billing and still complete. */
export class SetupBillingProfileHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const userId: unknown = context.getDependencyField(CREATE_USER_ACCOUNT, "user_id");
    if (isBlank(userId)) {
      throw missingUserData();
    }
    const planValue: unknown = context.getDependencyField(CREATE_USER_ACCOUNT, "plan");
    const plan = planOf(planValue);
    if (!isPaid(plan)) {
      return this.success(
        {
          user_id: userId,
          plan: planValue ?? null,
          billing_required: false,
          status: "skipped_free_plan",
          message: "Free plan users do not require billing setup",
        },
        { service: "billing_service", operation: "skip_billing" },
      );
    }
    const now = new Now();
    const billingId = `billing_${randomHex(12)}`;
    context.logger.info(`billing profile ${billingId} set up`);
    return this.success(
      {
        billing_id: billingId,
        user_id: userId,
        plan: planValue,
        price: moneyJson(PRICES[plan]),
        currency: "USD",
        billing_cycle: "monthly",
        features: [...FEATURES[plan]],
        status: "active",
        next_billing_date: isoMs(now.plusDays(30)),
        created_at: now.iso(),
      },
      { service: "billing_service", operation: "create_billing_profile" },
    );
  }
}

/** §3.3: the plan's default preferences with the user's custom ones merged over them. */
export class InitializePreferencesHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const userId: unknown = context.getDependencyField(CREATE_USER_ACCOUNT, "user_id");
    if (isBlank(userId)) {
      throw missingUserData();
    }
    const planValue: unknown = context.getDependencyField(CREATE_USER_ACCOUNT, "plan");
    const userInfo = objectOrEmpty(context.getInput("user_info"));
    const custom = objectOrEmpty(field(userInfo, "preferences"));

    const defaults = defaultPreferences(planOf(planValue));
    const preferences: Record<string, unknown> = {};
    for (const [key, value] of defaults) {
      setKey(preferences, key, value);
    }
    for (const key of Object.keys(custom)) {
      setKey(preferences, key, custom[key]);
    }
    const now = new Now().iso();
    return this.success(
      {
        preferences_id: `prefs_${randomHex(12)}`,
        user_id: userId,
        plan: planValue ?? null,
        preferences,
        defaults_applied: defaults.length,
        customizations: Object.keys(custom).length,
        status: "active",
        created_at: now,
        updated_at: now,
      },
      { service: "preferences_service", operation: "initialize_preferences" },
    );
  }
}

/** §3.4: sends the welcome messages on the channels the preferences and plan allow. */
export class SendWelcomeSequenceHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const missing = blankResults(context, [CREATE_USER_ACCOUNT, SETUP_BILLING_PROFILE, INITIALIZE_PREFERENCES]);
    if (missing.length > 0) {
      throw new PermanentError(`Missing results from steps: ${missing.join(", ")}`, {
        errorCode: "MISSING_DEPENDENCY_DATA",
      });
    }
    const user = objectOrEmpty(context.getDependencyResult(CREATE_USER_ACCOUNT));
    const userId: unknown = context.getDependencyField(CREATE_USER_ACCOUNT, "user_id");
    const userIdText = text(userId ?? null);
    const email = hasKey(user, "email") ? text(user.email) : text(undefined);
    const planValue = orDefault(context.getDependencyField(CREATE_USER_ACCOUNT, "plan"), FREE);
    const plan = planOf(planValue);
    const emailOff =
      context.getDependencyField(INITIALIZE_PREFERENCES, "preferences", "email_notifications") === false;
    const subject = WELCOME[plan].subject;

    const now = new Now();
    const channels: string[] = [];
    if (!emailOff) {
      const { body } = welcomeEmail(plan, userIdText, context.getDependencyResult(SETUP_BILLING_PROFILE));
      context.logger.info(`welcome email to ${email}: ${subject}\n${body}`);
      channels.push("email");
    }
    context.logger.info(`in-app welcome for ${userIdText}: ${subject}`);
    channels.push("in_app");
    if (plan === ENTERPRISE) {
      context.logger.info(`sms to ${SMS_NUMBER}: ${SMS_TEXT}`);
      channels.push("sms");
    }
    return this.success(
      {
        user_id: userId ?? null,
        plan: planValue,
        channels_used: channels,
        messages_sent: channels.length,
        welcome_sequence_id: `welcome_${randomHex(12)}`,
        status: "sent",
        sent_at: now.iso(),
      },
      { service: "notification_service", email_subject: subject },
    );
  }
}

/** §3.5: activates the user once every service has done its part. */
export class UpdateUserStatusHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const missing = blankResults(context, [
      CREATE_USER_ACCOUNT,
      SETUP_BILLING_PROFILE,
      INITIALIZE_PREFERENCES,
      SEND_WELCOME_SEQUENCE,
    ]);
    if (missing.length > 0) {
      throw new PermanentError(`Cannot complete registration: missing results from steps: ${missing.join(", ")}`, {
        errorCode: "INCOMPLETE_WORKFLOW",
      });
    }
    const user = (key: string): unknown => context.getDependencyField(CREATE_USER_ACCOUNT, key) ?? null;

    const now = new Now().iso();
    const summary: Record<string, unknown> = {
      user_id: user("user_id"),
      email: user("email"),
      plan: user("plan"),
      registration_status: "complete",
    };
    const billingId: unknown = context.getDependencyField(SETUP_BILLING_PROFILE, "billing_id");
    if (!isBlank(billingId)) {
      summary.billing_id = billingId;
      summary.next_billing_date = context.getDependencyField(SETUP_BILLING_PROFILE, "next_billing_date") ?? null;
    }
    const preferences: unknown = context.getDependencyField(INITIALIZE_PREFERENCES, "preferences");
    summary.preferences_count = isObject(preferences) ? Object.keys(preferences).length : 0;
    summary.welcome_sent = true;
    summary.notification_channels = context.getDependencyField(SEND_WELCOME_SEQUENCE, "channels_used") ?? null;
    summary.user_created_at = user("created_at");
    summary.registration_completed_at = now;

    return this.success(
      {
        user_id: user("user_id"),
        status: "active",
        plan: user("plan"),
        registration_summary: summary,
        activation_timestamp: now,
        all_services_coordinated: true,
        services_completed: [...SERVICES_COMPLETED],
      },
      { service: "user_service", operation: "activate_user" },
    );
  }
}
