# frozen_string_literal: true

require "tasker_core"
require "bigdecimal"
require "date"
require "blog_support"

# Rules shared by the two team-scaling namespaces (spec §4): the §4.0 mock rules (customer tier,
# tier policy, purchase 30 days back) and the small value helpers both customer_success and
# payments use. A port of team_scaling_rules.py (itself a port of the private helpers of
# workers/rust/src/handlers/blog/team_scaling.rs).
#
# Amounts are integer cents (§0.7). A JSON whole-number float such as 4999.0 counts as an integer
# and is written back as the Integer 4999 (cents_json).
module TeamScalingRules
  # Base namespace of §4.1, written into its results.
  CUSTOMER_SUCCESS = "customer_success"
  # Base namespace of §4.2, written into its results and into the delegation's target_namespace.
  PAYMENTS = "payments"
  # The template §4.1.4 delegates to.
  DELEGATED_WORKFLOW = "process_refund"
  # §4.1.4 always targets this payments version.
  DELEGATED_VERSION = "2.1.0"
  # §4.0: the original purchase was 30 days before now.
  DAYS_SINCE_PURCHASE = 30

  # serde_json writes an integral number in this range as a JSON integer (i64 or u64).
  JSON_INT_MIN = -(2**63)
  JSON_INT_END = 2**64

  # One row of the §4.0 tier table; max_amount is in cents.
  TierPolicy = Struct.new(:refund_window_days, :requires_approval, :max_amount, keyword_init: true)

  POLICIES = {
    "premium" => TierPolicy.new(refund_window_days: 90, requires_approval: false, max_amount: 100_000).freeze,
    "gold" => TierPolicy.new(refund_window_days: 60, requires_approval: false, max_amount: 50_000).freeze,
    "standard" => TierPolicy.new(refund_window_days: 30, requires_approval: true, max_amount: 10_000).freeze
  }.freeze

  RFC3339 = /\A(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\z/.freeze

  module_function

  # A value as text for substring tests and messages: a string as is, nil as "", anything else
  # as its compact JSON text.
  def text(value)
    return "" if value.nil?
    return value if value.is_a?(String)

    BlogSupport.json_text(value)
  end

  # A cents amount (BigDecimal) as a JSON number: integral values are written as Integers
  # (§0.1 rule 3).
  def cents_json(d)
    if d.frac.zero?
      n = d.to_i
      return n if n >= JSON_INT_MIN && n < JSON_INT_END
    end
    d.to_f
  end

  # An amount read from the input or a dependency, normalised like cents_json; a non-number is
  # passed through unchanged (the input schemas make it an integer).
  def cents_value(value)
    d = BlogSupport.decimal(value)
    d.nil? ? value : cents_json(d)
  end

  # "$49.99" for 4999 cents (§0.7 "Money in text"); a non-number counts as 0.
  def cents_money(value)
    d = BlogSupport.decimal(value) || BigDecimal(0)
    BlogSupport.money_text(BlogSupport.divide(d, 100))
  end

  # §4.0 customer tier: case-insensitive vip/premium -> premium, else gold -> gold, else standard.
  def customer_tier(customer_id)
    cid = customer_id.downcase
    return "premium" if cid.include?("vip") || cid.include?("premium")
    return "gold" if cid.include?("gold")

    "standard"
  end

  # The §4.0 policy of a tier; an unknown tier gets the standard row.
  def tier_policy(tier)
    POLICIES.fetch(tier) { POLICIES.fetch("standard") }
  end

  # An RFC 3339 timestamp as a Time, or nil when it does not read as one (read like Python's
  # datetime: a date that does not exist, hour 24, second 60 or an offset of 24 h or more is
  # unreadable; fractions beyond microseconds are dropped).
  def parse_rfc3339(value)
    m = RFC3339.match(value)
    return nil if m.nil?

    year, month, day, hour, minute, second = (1..6).map { |i| m[i].to_i }
    return nil unless year >= 1 && Date.valid_date?(year, month, day)
    return nil unless hour <= 23 && minute <= 59 && second <= 59

    micros = (m[7] || "0")[0, 6].ljust(6, "0").to_i
    offset_minutes = 0
    unless m[8]
      offset_minutes = (m[10].to_i * 60) + m[11].to_i
      return nil if offset_minutes >= 24 * 60

      offset_minutes = -offset_minutes if m[9] == "-"
    end
    utc = Time.utc(year, month, day, hour, minute, Rational((second * 1_000_000) + micros, 1_000_000))
    utc - (offset_minutes * 60)
  end

  # Whole days from original_purchase_date to now; §4.0's 30 when the date is unreadable.
  def days_since(purchase, now)
    return DAYS_SINCE_PURCHASE unless purchase.is_a?(String)

    at = parse_rfc3339(purchase)
    return DAYS_SINCE_PURCHASE if at.nil?

    delta = now.at.to_r - at.to_r
    # Whole seconds truncated toward zero, then days floored (chrono num_seconds + div_euclid).
    seconds = delta.truncate
    seconds.div(86_400)
  end

  # The names of the blank values, in order, ", "-joined (nil when none is blank).
  def blank_names(fields)
    blank = fields.select { |_name, value| BlogSupport.blank?(value) }.map(&:first)
    blank.empty? ? nil : blank.join(", ")
  end

  def permanent(code, message)
    TaskerCore::Errors::PermanentError.new(message, error_code: code)
  end

  def retryable(code, message, retry_after)
    TaskerCore::Errors::RetryableError.new(message, error_code: code, retry_after: retry_after)
  end
end
