/**
 * Handlers of spec §2 data pipeline analytics (`data_pipeline_<sfx>/analytics_pipeline@1.0.0`).
 *
 * Three parallel branches (sales, inventory, customers) extract mock rows and transform them;
 * `aggregate_metrics` joins the three transforms and `generate_insights` reads the aggregate. The
 * handlers read no task input, so every valid input gives the same results. Money is exact
 * (decimal.js) and rounded half away from zero (§0.7).
 *
 * A port of `workers/python/examples/blog/data_pipeline/step_handlers.py` (itself a port of
 * `workers/rust/src/handlers/blog/data_pipeline.rs`), with the same readings where the spec is open
 * (none is reachable from task input, since the extract steps always return the mock rows):
 * - a numeric field that is missing or not a number counts as 0 (a number counts only within the
 *   range of the Rust decimal type: at most 28 decimals, magnitude below 2^96);
 * - a grouping key (`date`, `product_id`, `warehouse`, `tier`) that is a string is used as is, any
 *   other JSON value by its compact JSON text as serde_json writes it, a missing or null one as `""`
 *   (a whole number is an integer in JavaScript, so `7.0` groups with `7` under `"7"`);
 * - a `records` value that is not blank and not an array has no rows;
 * - a division by zero gives 0;
 * - the thresholds of §2.4 are literal: `revenue_per_customer` < 500 recommends upselling, > 500
 *   earns 40 points, so exactly 500 does neither; `avg_ltv` > 3000 (exactly 3000 is not above).
 */

import { PermanentError, StepContext, StepHandlerResult } from "@tasker/worker";
import {
  BlogHandler,
  Dec,
  Now,
  compareCodePoints,
  decimal,
  field,
  isBlank,
  isObject,
  jsonText,
  moneyJson,
  moneyText,
  numberJson,
  roundCents,
  setKey,
} from "../blog_support";

/** The base namespace of this workflow (§0.2). */
export const NAMESPACE = "data_pipeline";

// ---------------------------------------------------------------------------------------------
// Mock data (§2), in the spec's row order.

/** `[order_id, date, product_id, quantity, amount]`. */
export const SALES: ReadonlyArray<readonly [string, string, string, number, string]> = [
  ["ORD-001", "2025-11-01", "PROD-A", 5, "499.95"],
  ["ORD-002", "2025-11-05", "PROD-B", 3, "299.97"],
  ["ORD-003", "2025-11-10", "PROD-A", 2, "199.98"],
  ["ORD-004", "2025-11-15", "PROD-C", 10, "1499.90"],
  ["ORD-005", "2025-11-18", "PROD-B", 7, "699.93"],
];

/** `[product_id, sku, warehouse, quantity_on_hand, reorder_point]`. */
export const INVENTORY: ReadonlyArray<readonly [string, string, string, number, number]> = [
  ["PROD-A", "SKU-A-001", "WH-01", 150, 50],
  ["PROD-B", "SKU-B-002", "WH-01", 75, 25],
  ["PROD-C", "SKU-C-003", "WH-02", 200, 100],
  ["PROD-A", "SKU-A-001", "WH-02", 100, 50],
  ["PROD-B", "SKU-B-002", "WH-03", 50, 25],
];

/** `[customer_id, name, tier, lifetime_value, join_date]`. */
export const CUSTOMERS: ReadonlyArray<readonly [string, string, string, string, string]> = [
  ["CUST-001", "Alice Johnson", "gold", "5000.00", "2024-01-15"],
  ["CUST-002", "Bob Smith", "silver", "2500.00", "2024-03-20"],
  ["CUST-003", "Carol White", "premium", "15000.00", "2023-11-10"],
  ["CUST-004", "David Brown", "standard", "500.00", "2025-01-05"],
  ["CUST-005", "Eve Davis", "gold", "7500.00", "2024-06-12"],
];

const EXTRACT_SALES_DATA = "extract_sales_data";
const EXTRACT_INVENTORY_DATA = "extract_inventory_data";
const EXTRACT_CUSTOMER_DATA = "extract_customer_data";
const TRANSFORMS = ["transform_sales", "transform_inventory", "transform_customers"] as const;

const HIGH_VALUE = new Dec(10_000);
const MEDIUM_VALUE = new Dec(1_000);
const FIVE_HUNDRED = new Dec(500);
const THREE_THOUSAND = new Dec(3000);

// ---------------------------------------------------------------------------------------------
// Private value helpers: the Rust module's readings of JSON values.

/** A numeric field of a row or result; missing or non-numeric counts as 0. */
function num(value: unknown): Dec {
  return decimal(value) ?? new Dec(0);
}

/** A grouping key of a row. */
function keyOf(row: unknown, name: string): string {
  const value = field(row, name);
  if (value === null || value === undefined) {
    return "";
  }
  if (typeof value === "string") {
    return value;
  }
  return jsonText(value);
}

/** An exact number as text, e.g. `5` or `2.5` (never an exponent). */
function plainNumberText(d: Dec): string {
  if (d.isZero()) {
    return "0";
  }
  return d.toFixed();
}

/** `num / den`, or 0 when `den` is 0. */
function ratio(n: Dec, den: Dec): Dec {
  return den.isZero() ? new Dec(0) : n.div(den);
}

/** round(total / count) to cents. */
function avgMoney(total: Dec, count: number): number | bigint {
  return moneyJson(roundCents(ratio(total, new Dec(count))));
}

/** Map entries sorted by key (code point order), written into a fresh JSON object. */
function sortedObject<V>(map: Map<string, V>, write: (value: V) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of [...map.keys()].sort(compareCodePoints)) {
    setKey(out, key, write(map.get(key) as V));
  }
  return out;
}

/** The extract's `records`, failing with `MISSING_EXTRACT_RESULTS` when blank (§2.2). */
function extractRecords(context: StepContext, extractStep: string, label: string): unknown[] {
  const records: unknown = context.getDependencyField(extractStep, "records");
  if (isBlank(records)) {
    throw new PermanentError(`${label} extraction results not found`, { errorCode: "MISSING_EXTRACT_RESULTS" });
  }
  return Array.isArray(records) ? records : [];
}

// ---------------------------------------------------------------------------------------------
// §2.1 Extract steps. They cannot fail.

/** §2.1 `extract_sales_data`. */
export class ExtractSalesDataHandler extends BlogHandler {
  override async call(_context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    let totalAmount = new Dec(0);
    const records = SALES.map(([orderId, date, productId, quantity, amountText]) => {
      const amount = new Dec(amountText);
      totalAmount = totalAmount.plus(amount);
      return { order_id: orderId, date, product_id: productId, quantity, amount: moneyJson(amount) };
    });
    const dates = SALES.map((row) => row[1]).sort(compareCodePoints);
    return this.success({
      records,
      extracted_at: now.iso(),
      source: "SalesDatabase",
      total_amount: moneyJson(totalAmount),
      date_range: { start_date: dates[0], end_date: dates[dates.length - 1] },
    });
  }
}

/** §2.1 `extract_inventory_data`. */
export class ExtractInventoryDataHandler extends BlogHandler {
  override async call(_context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    let totalQuantity = 0;
    const warehouses: string[] = [];
    const products = new Set<string>();
    const records = INVENTORY.map(([productId, sku, warehouse, onHand, reorderPoint]) => {
      totalQuantity += onHand;
      if (!warehouses.includes(warehouse)) {
        warehouses.push(warehouse);
      }
      products.add(productId);
      return { product_id: productId, sku, warehouse, quantity_on_hand: onHand, reorder_point: reorderPoint };
    });
    return this.success({
      records,
      extracted_at: now.iso(),
      source: "InventorySystem",
      total_quantity: totalQuantity,
      warehouses,
      products_tracked: products.size,
    });
  }
}

/** §2.1 `extract_customer_data`. */
export class ExtractCustomerDataHandler extends BlogHandler {
  override async call(_context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    let total = new Dec(0);
    const tiers = new Map<string, number>();
    const records = CUSTOMERS.map(([customerId, name, tier, lifetimeValue, joinDate]) => {
      const value = new Dec(lifetimeValue);
      total = total.plus(value);
      tiers.set(tier, (tiers.get(tier) ?? 0) + 1);
      return { customer_id: customerId, name, tier, lifetime_value: moneyJson(value), join_date: joinDate };
    });
    return this.success({
      records,
      extracted_at: now.iso(),
      source: "CRMSystem",
      total_customers: CUSTOMERS.length,
      total_lifetime_value: moneyJson(total),
      tier_breakdown: sortedObject(tiers, (count) => count),
      avg_lifetime_value: avgMoney(total, CUSTOMERS.length),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// §2.2 Transform steps.

/** §2.2 `transform_sales`. */
export class TransformSalesHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const records = extractRecords(context, EXTRACT_SALES_DATA, "Sales");
    const daily = new Map<string, { total: Dec; count: number }>();
    const products = new Map<string, { quantity: Dec; revenue: Dec; count: number }>();
    let totalRevenue = new Dec(0);
    for (const row of records) {
      const amount = num(field(row, "amount"));
      totalRevenue = totalRevenue.plus(amount);
      const dateKey = keyOf(row, "date");
      const day = daily.get(dateKey) ?? { total: new Dec(0), count: 0 };
      day.total = day.total.plus(amount);
      day.count += 1;
      daily.set(dateKey, day);
      const productKey = keyOf(row, "product_id");
      const product = products.get(productKey) ?? { quantity: new Dec(0), revenue: new Dec(0), count: 0 };
      product.quantity = product.quantity.plus(num(field(row, "quantity")));
      product.revenue = product.revenue.plus(amount);
      product.count += 1;
      products.set(productKey, product);
    }
    return this.success({
      record_count: records.length,
      transformation_type: "sales_analytics",
      source: EXTRACT_SALES_DATA,
      daily_sales: sortedObject(daily, (d) => ({
        total_amount: moneyJson(d.total),
        order_count: d.count,
        avg_order_value: avgMoney(d.total, d.count),
      })),
      product_sales: sortedObject(products, (p) => ({
        total_quantity: numberJson(p.quantity),
        total_revenue: moneyJson(p.revenue),
        order_count: p.count,
      })),
      total_revenue: moneyJson(totalRevenue),
    });
  }
}

/** §2.2 `transform_inventory`. */
export class TransformInventoryHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const records = extractRecords(context, EXTRACT_INVENTORY_DATA, "Inventory");
    const warehouses = new Map<string, { quantity: Dec; products: Set<string>; reorderAlerts: number }>();
    const products = new Map<string, { quantity: Dec; reorderPoints: Dec; warehouses: Set<string> }>();
    let totalOnHand = new Dec(0);
    for (const row of records) {
      const productId = keyOf(row, "product_id");
      const warehouseId = keyOf(row, "warehouse");
      const onHand = num(field(row, "quantity_on_hand"));
      const reorderPoint = num(field(row, "reorder_point"));
      totalOnHand = totalOnHand.plus(onHand);
      const w = warehouses.get(warehouseId) ?? { quantity: new Dec(0), products: new Set<string>(), reorderAlerts: 0 };
      w.quantity = w.quantity.plus(onHand);
      w.products.add(productId);
      if (onHand.lte(reorderPoint)) {
        w.reorderAlerts += 1;
      }
      warehouses.set(warehouseId, w);
      const p = products.get(productId) ?? {
        quantity: new Dec(0),
        reorderPoints: new Dec(0),
        warehouses: new Set<string>(),
      };
      p.quantity = p.quantity.plus(onHand);
      p.reorderPoints = p.reorderPoints.plus(reorderPoint);
      p.warehouses.add(warehouseId);
      products.set(productId, p);
    }
    let reorderAlerts = 0;
    const productInventory = sortedObject(products, (p) => {
      const needsReorder = p.quantity.lt(p.reorderPoints);
      if (needsReorder) {
        reorderAlerts += 1;
      }
      return {
        total_quantity: numberJson(p.quantity),
        warehouse_count: p.warehouses.size,
        needs_reorder: needsReorder,
      };
    });
    return this.success({
      record_count: records.length,
      transformation_type: "inventory_analytics",
      source: EXTRACT_INVENTORY_DATA,
      warehouse_summary: sortedObject(warehouses, (w) => ({
        total_quantity: numberJson(w.quantity),
        product_count: w.products.size,
        reorder_alerts: w.reorderAlerts,
      })),
      product_inventory: productInventory,
      total_quantity_on_hand: numberJson(totalOnHand),
      reorder_alerts: reorderAlerts,
    });
  }
}

/** §2.2 `transform_customers`. */
export class TransformCustomersHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const records = extractRecords(context, EXTRACT_CUSTOMER_DATA, "Customer");
    const tiers = new Map<string, { count: number; sum: Dec }>();
    let highValue = 0;
    let mediumValue = 0;
    let lowValue = 0;
    let total = new Dec(0);
    for (const row of records) {
      const value = num(field(row, "lifetime_value"));
      total = total.plus(value);
      const tierKey = keyOf(row, "tier");
      const tier = tiers.get(tierKey) ?? { count: 0, sum: new Dec(0) };
      tier.count += 1;
      tier.sum = tier.sum.plus(value);
      tiers.set(tierKey, tier);
      if (value.gte(HIGH_VALUE)) {
        highValue += 1;
      } else if (value.gte(MEDIUM_VALUE)) {
        mediumValue += 1;
      } else {
        lowValue += 1;
      }
    }
    return this.success({
      record_count: records.length,
      transformation_type: "customer_analytics",
      source: EXTRACT_CUSTOMER_DATA,
      tier_analysis: sortedObject(tiers, (t) => ({
        customer_count: t.count,
        total_lifetime_value: moneyJson(t.sum),
        avg_lifetime_value: avgMoney(t.sum, t.count),
      })),
      value_segments: { high_value: highValue, medium_value: mediumValue, low_value: lowValue },
      total_lifetime_value: moneyJson(total),
      avg_customer_value: avgMoney(total, records.length),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// §2.3 aggregate_metrics.

/** §2.3 `aggregate_metrics`. */
export class AggregateMetricsHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const missing = TRANSFORMS.filter((step) => isBlank(context.getDependencyResult(step)));
    if (missing.length > 0) {
      throw new PermanentError(`Missing transform results: ${missing.join(", ")}`, {
        errorCode: "MISSING_TRANSFORM_RESULTS",
      });
    }
    const get = (step: string, key: string): Dec => num(context.getDependencyField(step, key));

    const totalRevenue = roundCents(get("transform_sales", "total_revenue"));
    const totalInventoryQuantity = get("transform_inventory", "total_quantity_on_hand");
    const totalCustomers = get("transform_customers", "record_count");
    const totalCustomerLifetimeValue = roundCents(get("transform_customers", "total_lifetime_value"));
    const salesTransactions = get("transform_sales", "record_count");
    const inventoryReorderAlerts = get("transform_inventory", "reorder_alerts");
    const revenuePerCustomer = roundCents(ratio(totalRevenue, totalCustomers));
    const inventoryTurnoverIndicator = ratio(totalRevenue, totalInventoryQuantity).toDecimalPlaces(
      4,
      Dec.ROUND_HALF_UP,
    );
    return this.success({
      total_revenue: moneyJson(totalRevenue),
      total_inventory_quantity: numberJson(totalInventoryQuantity),
      total_customers: numberJson(totalCustomers),
      total_customer_lifetime_value: moneyJson(totalCustomerLifetimeValue),
      sales_transactions: numberJson(salesTransactions),
      inventory_reorder_alerts: numberJson(inventoryReorderAlerts),
      revenue_per_customer: moneyJson(revenuePerCustomer),
      inventory_turnover_indicator: numberJson(inventoryTurnoverIndicator),
      aggregation_complete: true,
      sources_included: 3,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// §2.4 generate_insights.

function rating(score: number): string {
  if (score >= 80) {
    return "Excellent";
  }
  if (score >= 60) {
    return "Good";
  }
  if (score >= 40) {
    return "Fair";
  }
  return "Needs Improvement";
}

/** §2.4 `generate_insights`. */
export class GenerateInsightsHandler extends BlogHandler {
  override async call(context: StepContext): Promise<StepHandlerResult> {
    const now = new Now();
    const aggregate: unknown = context.getDependencyResult("aggregate_metrics");
    if (isBlank(aggregate)) {
      throw new PermanentError("Aggregated metrics not found", { errorCode: "MISSING_AGGREGATE_RESULTS" });
    }
    const metric = (key: string): Dec => num(field(aggregate, key));

    const totalRevenue = metric("total_revenue");
    const totalCustomers = metric("total_customers");
    const revenuePerCustomer = metric("revenue_per_customer");
    const alerts = metric("inventory_reorder_alerts");
    const avgLtv = roundCents(ratio(metric("total_customer_lifetime_value"), totalCustomers));

    const noAlerts = alerts.isZero();
    const insights = [
      {
        category: "Revenue",
        finding: `Total revenue of ${moneyText(totalRevenue)} with ${plainNumberText(totalCustomers)} customers`,
        metric: moneyJson(revenuePerCustomer),
        recommendation: revenuePerCustomer.lt(FIVE_HUNDRED) ? "Consider upselling strategies" : "Customer spend is healthy",
      },
      {
        category: "Inventory",
        finding: noAlerts ? "All products above reorder points" : `${plainNumberText(alerts)} products need reordering`,
        metric: numberJson(alerts),
        recommendation: noAlerts ? "Inventory levels are healthy" : "Review reorder points and place purchase orders",
      },
      {
        category: "Customer Value",
        finding: `Average customer lifetime value: ${moneyText(avgLtv)}`,
        metric: moneyJson(avgLtv),
        recommendation: avgLtv.gt(THREE_THOUSAND) ? "Focus on retention programs" : "Increase customer engagement",
      },
    ];
    const score =
      (revenuePerCustomer.gt(FIVE_HUNDRED) ? 40 : 0) + (noAlerts ? 30 : 0) + (avgLtv.gt(THREE_THOUSAND) ? 30 : 0);
    return this.success({
      insights,
      health_score: { score, max_score: 100, rating: rating(score) },
      total_metrics_analyzed: isObject(aggregate) ? Object.keys(aggregate).length : 0,
      pipeline_complete: true,
      generated_at: now.iso(),
    });
  }
}
