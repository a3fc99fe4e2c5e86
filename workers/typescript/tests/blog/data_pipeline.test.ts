/**
 * Spec §2 data pipeline handlers (`examples/blog/data_pipeline/step_handlers.ts`): the worked
 * reference numbers of §2.5, every failure, and the boundaries and rounding rules. A port of the
 * Python suite `workers/python/tests/test_blog_data_pipeline.py`; results and failures must be
 * identical.
 */

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { StepHandler, StepHandlerResult } from "../../src/index";
import { buildContext, runHandler } from "../../src/testing";
import {
  AggregateMetricsHandler,
  ExtractCustomerDataHandler,
  ExtractInventoryDataHandler,
  ExtractSalesDataHandler,
  GenerateInsightsHandler,
  TransformCustomersHandler,
  TransformInventoryHandler,
  TransformSalesHandler,
} from "../../examples/blog/data_pipeline/step_handlers";
import { Json, TS, assertJsonEqual, examplesDir, ok as okResult, resolveCallable, templateCallables } from "./blog_assertions";

function referenceInput(): Json {
  return { pipeline_id: "pipeline_ref", date_range: { start_date: "2025-11-01", end_date: "2025-11-30" } };
}

function run(handler: StepHandler, results: Json): Promise<StepHandlerResult> {
  return runHandler(handler, buildContext({ attempt: 1, maxAttempts: 2, input: {}, dependencyResults: results }));
}

async function ok(r: Promise<StepHandlerResult>): Promise<Json> {
  return okResult(await r);
}

/** `result` without `key`, after checking it is a §0.7 timestamp. */
function takeTimestamp(result: Json, key: string): Json {
  const copy = { ...result };
  assert.ok(key in copy, `${key} missing`);
  const value = copy[key];
  assert.ok(typeof value === "string" && TS.test(value), `${key} = ${JSON.stringify(value)}`);
  delete copy[key];
  return copy;
}

async function assertFailure(r: Promise<StepHandlerResult>, code: string, message: string): Promise<void> {
  const result = await r;
  assert.equal(result.success, false, `expected a failure, got ${JSON.stringify(result.result)}`);
  assert.deepStrictEqual(JSON.parse(JSON.stringify(result.error)), {
    message,
    error_code: code,
    retryable: false,
    retry_after: null,
    context: {},
  });
}

/** Every step of the reference run (§2.5), each fed its real dependencies. */
const chain: Json = {};

before(async () => {
  const root = (handler: StepHandler): Promise<Json> =>
    ok(runHandler(handler, buildContext({ attempt: 1, maxAttempts: 3, input: referenceInput() })));
  chain.sales = await root(new ExtractSalesDataHandler());
  chain.inventory = await root(new ExtractInventoryDataHandler());
  chain.customers = await root(new ExtractCustomerDataHandler());
  chain.t_sales = await ok(run(new TransformSalesHandler(), { extract_sales_data: chain.sales }));
  chain.t_inventory = await ok(run(new TransformInventoryHandler(), { extract_inventory_data: chain.inventory }));
  chain.t_customers = await ok(run(new TransformCustomersHandler(), { extract_customer_data: chain.customers }));
  chain.aggregate = await ok(
    run(new AggregateMetricsHandler(), {
      transform_sales: chain.t_sales,
      transform_inventory: chain.t_inventory,
      transform_customers: chain.t_customers,
    }),
  );
  chain.insights = await ok(run(new GenerateInsightsHandler(), { aggregate_metrics: chain.aggregate }));
});

// ------------------------------------------------------------------------------------------------
// Reference input, step by step (§2.5)

describe("reference run", () => {
  test("extract_sales_data returns the mock rows, total and date range", () => {
    assertJsonEqual(takeTimestamp(chain.sales, "extracted_at"), {
      records: [
        { order_id: "ORD-001", date: "2025-11-01", product_id: "PROD-A", quantity: 5, amount: 499.95 },
        { order_id: "ORD-002", date: "2025-11-05", product_id: "PROD-B", quantity: 3, amount: 299.97 },
        { order_id: "ORD-003", date: "2025-11-10", product_id: "PROD-A", quantity: 2, amount: 199.98 },
        { order_id: "ORD-004", date: "2025-11-15", product_id: "PROD-C", quantity: 10, amount: 1499.9 },
        { order_id: "ORD-005", date: "2025-11-18", product_id: "PROD-B", quantity: 7, amount: 699.93 },
      ],
      source: "SalesDatabase",
      total_amount: 3199.73,
      date_range: { start_date: "2025-11-01", end_date: "2025-11-18" },
    });
  });

  test("extract_inventory_data returns rows, total, warehouses in order and product count", () => {
    assertJsonEqual(takeTimestamp(chain.inventory, "extracted_at"), {
      records: [
        { product_id: "PROD-A", sku: "SKU-A-001", warehouse: "WH-01", quantity_on_hand: 150, reorder_point: 50 },
        { product_id: "PROD-B", sku: "SKU-B-002", warehouse: "WH-01", quantity_on_hand: 75, reorder_point: 25 },
        { product_id: "PROD-C", sku: "SKU-C-003", warehouse: "WH-02", quantity_on_hand: 200, reorder_point: 100 },
        { product_id: "PROD-A", sku: "SKU-A-001", warehouse: "WH-02", quantity_on_hand: 100, reorder_point: 50 },
        { product_id: "PROD-B", sku: "SKU-B-002", warehouse: "WH-03", quantity_on_hand: 50, reorder_point: 25 },
      ],
      source: "InventorySystem",
      total_quantity: 575,
      warehouses: ["WH-01", "WH-02", "WH-03"],
      products_tracked: 3,
    });
  });

  test("extract_customer_data returns rows, totals, tiers and average", () => {
    assertJsonEqual(takeTimestamp(chain.customers, "extracted_at"), {
      records: [
        { customer_id: "CUST-001", name: "Alice Johnson", tier: "gold", lifetime_value: 5000, join_date: "2024-01-15" },
        { customer_id: "CUST-002", name: "Bob Smith", tier: "silver", lifetime_value: 2500, join_date: "2024-03-20" },
        { customer_id: "CUST-003", name: "Carol White", tier: "premium", lifetime_value: 15000, join_date: "2023-11-10" },
        { customer_id: "CUST-004", name: "David Brown", tier: "standard", lifetime_value: 500, join_date: "2025-01-05" },
        { customer_id: "CUST-005", name: "Eve Davis", tier: "gold", lifetime_value: 7500, join_date: "2024-06-12" },
      ],
      source: "CRMSystem",
      total_customers: 5,
      total_lifetime_value: 30500,
      tier_breakdown: { gold: 2, premium: 1, silver: 1, standard: 1 },
      avg_lifetime_value: 6100,
    });
  });

  test("transform_sales groups by day and product", () => {
    assertJsonEqual(chain.t_sales, {
      record_count: 5,
      transformation_type: "sales_analytics",
      source: "extract_sales_data",
      daily_sales: {
        "2025-11-01": { total_amount: 499.95, order_count: 1, avg_order_value: 499.95 },
        "2025-11-05": { total_amount: 299.97, order_count: 1, avg_order_value: 299.97 },
        "2025-11-10": { total_amount: 199.98, order_count: 1, avg_order_value: 199.98 },
        "2025-11-15": { total_amount: 1499.9, order_count: 1, avg_order_value: 1499.9 },
        "2025-11-18": { total_amount: 699.93, order_count: 1, avg_order_value: 699.93 },
      },
      product_sales: {
        "PROD-A": { total_quantity: 7, total_revenue: 699.93, order_count: 2 },
        "PROD-B": { total_quantity: 10, total_revenue: 999.9, order_count: 2 },
        "PROD-C": { total_quantity: 10, total_revenue: 1499.9, order_count: 1 },
      },
      total_revenue: 3199.73,
    });
  });

  test("transform_inventory summarises warehouses and products", () => {
    assertJsonEqual(chain.t_inventory, {
      record_count: 5,
      transformation_type: "inventory_analytics",
      source: "extract_inventory_data",
      warehouse_summary: {
        "WH-01": { total_quantity: 225, product_count: 2, reorder_alerts: 0 },
        "WH-02": { total_quantity: 300, product_count: 2, reorder_alerts: 0 },
        "WH-03": { total_quantity: 50, product_count: 1, reorder_alerts: 0 },
      },
      product_inventory: {
        "PROD-A": { total_quantity: 250, warehouse_count: 2, needs_reorder: false },
        "PROD-B": { total_quantity: 125, warehouse_count: 2, needs_reorder: false },
        "PROD-C": { total_quantity: 200, warehouse_count: 1, needs_reorder: false },
      },
      total_quantity_on_hand: 575,
      reorder_alerts: 0,
    });
  });

  test("transform_customers analyses tiers and value segments", () => {
    assertJsonEqual(chain.t_customers, {
      record_count: 5,
      transformation_type: "customer_analytics",
      source: "extract_customer_data",
      tier_analysis: {
        gold: { customer_count: 2, total_lifetime_value: 12500, avg_lifetime_value: 6250 },
        premium: { customer_count: 1, total_lifetime_value: 15000, avg_lifetime_value: 15000 },
        silver: { customer_count: 1, total_lifetime_value: 2500, avg_lifetime_value: 2500 },
        standard: { customer_count: 1, total_lifetime_value: 500, avg_lifetime_value: 500 },
      },
      value_segments: { high_value: 1, medium_value: 3, low_value: 1 },
      total_lifetime_value: 30500,
      avg_customer_value: 6100,
    });
  });

  test("aggregate_metrics has exactly the ten reference values", () => {
    assertJsonEqual(chain.aggregate, {
      total_revenue: 3199.73,
      total_inventory_quantity: 575,
      total_customers: 5,
      total_customer_lifetime_value: 30500,
      sales_transactions: 5,
      inventory_reorder_alerts: 0,
      revenue_per_customer: 639.95,
      inventory_turnover_indicator: 5.5647,
      aggregation_complete: true,
      sources_included: 3,
    });
    assert.deepStrictEqual(Object.keys(chain.aggregate), [
      "total_revenue",
      "total_inventory_quantity",
      "total_customers",
      "total_customer_lifetime_value",
      "sales_transactions",
      "inventory_reorder_alerts",
      "revenue_per_customer",
      "inventory_turnover_indicator",
      "aggregation_complete",
      "sources_included",
    ]);
  });

  test("generate_insights gives the reference findings and an excellent score", () => {
    assertJsonEqual(takeTimestamp(chain.insights, "generated_at"), {
      insights: [
        {
          category: "Revenue",
          finding: "Total revenue of $3199.73 with 5 customers",
          metric: 639.95,
          recommendation: "Customer spend is healthy",
        },
        {
          category: "Inventory",
          finding: "All products above reorder points",
          metric: 0,
          recommendation: "Inventory levels are healthy",
        },
        {
          category: "Customer Value",
          finding: "Average customer lifetime value: $6100.00",
          metric: 6100,
          recommendation: "Focus on retention programs",
        },
      ],
      health_score: { score: 100, max_score: 100, rating: "Excellent" },
      total_metrics_analyzed: 10,
      pipeline_complete: true,
    });
  });

  for (const Handler of [ExtractSalesDataHandler, ExtractInventoryDataHandler, ExtractCustomerDataHandler]) {
    test(`${Handler.name} ignores the task input`, async () => {
      const strange = buildContext({ input: { pipeline_id: "other", date_range: { start_date: "1999-01-01" } } });
      const empty = buildContext({});
      const a = await ok(runHandler(new Handler(), strange));
      const b = await ok(runHandler(new Handler(), empty));
      assert.deepStrictEqual(takeTimestamp(a, "extracted_at"), takeTimestamp(b, "extracted_at"));
    });
  }

  test("every step is served by the callable its TypeScript template names", async () => {
    const cases: Record<string, [Json, string | null]> = {
      ExtractSalesDataHandler: [{}, "extracted_at"],
      ExtractInventoryDataHandler: [{}, "extracted_at"],
      ExtractCustomerDataHandler: [{}, "extracted_at"],
      TransformSalesHandler: [{ extract_sales_data: chain.sales }, null],
      TransformInventoryHandler: [{ extract_inventory_data: chain.inventory }, null],
      TransformCustomersHandler: [{ extract_customer_data: chain.customers }, null],
      AggregateMetricsHandler: [
        {
          transform_sales: chain.t_sales,
          transform_inventory: chain.t_inventory,
          transform_customers: chain.t_customers,
        },
        null,
      ],
      GenerateInsightsHandler: [{ aggregate_metrics: chain.aggregate }, "generated_at"],
    };
    const callables = templateCallables("analytics_pipeline.yaml");
    assert.deepStrictEqual(
      [...callables].sort(),
      Object.keys(cases)
        .map((c) => `DataPipeline.StepHandlers.${c}`)
        .sort(),
    );
    for (const callable of callables) {
      const handler = resolveCallable(examplesDir("blog"), callable);
      const [results, timestamp] = cases[callable.split(".").pop() as string];
      const result = await ok(run(handler, results));
      assert.ok(Object.keys(result).length > 0, callable);
      if (timestamp !== null) {
        takeTimestamp(result, timestamp);
      }
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Failures (§2.2-§2.4)

describe("failures", () => {
  const blankSales: Json[] = [
    {},
    { extract_sales_data: {} },
    { extract_sales_data: { records: [] } },
    { extract_sales_data: { records: null, total_amount: 1 } },
  ];
  for (const results of blankSales) {
    test(`transform_sales fails when sales records are blank (${JSON.stringify(results)})`, async () => {
      await assertFailure(run(new TransformSalesHandler(), results), "MISSING_EXTRACT_RESULTS", "Sales extraction results not found");
    });
  }

  for (const results of [{}, { extract_inventory_data: { records: [] } }, { extract_inventory_data: { records: "  " } }]) {
    test(`transform_inventory fails when inventory records are blank (${JSON.stringify(results)})`, async () => {
      await assertFailure(
        run(new TransformInventoryHandler(), results),
        "MISSING_EXTRACT_RESULTS",
        "Inventory extraction results not found",
      );
    });
  }

  for (const results of [{}, { extract_customer_data: { records: {} } }, { extract_customer_data: null }]) {
    test(`transform_customers fails when customer records are blank (${JSON.stringify(results)})`, async () => {
      await assertFailure(
        run(new TransformCustomersHandler(), results),
        "MISSING_EXTRACT_RESULTS",
        "Customer extraction results not found",
      );
    });
  }

  test("transforms read their own extract only", async () => {
    // The sales rows under the inventory step's name are not the sales extract.
    await assertFailure(
      run(new TransformSalesHandler(), { extract_inventory_data: chain.sales }),
      "MISSING_EXTRACT_RESULTS",
      "Sales extraction results not found",
    );
  });

  test("transforms read records that are not an array as no rows", async () => {
    let r = await ok(run(new TransformSalesHandler(), { extract_sales_data: { records: "x" } }));
    assertJsonEqual(r, {
      record_count: 0,
      transformation_type: "sales_analytics",
      source: "extract_sales_data",
      daily_sales: {},
      product_sales: {},
      total_revenue: 0,
    });
    r = await ok(run(new TransformCustomersHandler(), { extract_customer_data: { records: 5 } }));
    assertJsonEqual(r.avg_customer_value, 0);
  });

  test("aggregate_metrics names every blank transform in branch order", async () => {
    const cases: Array<[Json, string]> = [
      [{}, "transform_sales, transform_inventory, transform_customers"],
      [{ transform_inventory: chain.t_inventory, transform_customers: chain.t_customers }, "transform_sales"],
      [{ transform_sales: chain.t_sales, transform_customers: chain.t_customers }, "transform_inventory"],
      [{ transform_sales: chain.t_sales, transform_inventory: chain.t_inventory }, "transform_customers"],
      [
        { transform_sales: {}, transform_inventory: chain.t_inventory, transform_customers: null },
        "transform_sales, transform_customers",
      ],
    ];
    for (const [results, names] of cases) {
      await assertFailure(
        run(new AggregateMetricsHandler(), results),
        "MISSING_TRANSFORM_RESULTS",
        `Missing transform results: ${names}`,
      );
    }
  });

  for (const results of [{}, { aggregate_metrics: {} }, { aggregate_metrics: null }]) {
    test(`generate_insights fails when the aggregate is blank (${JSON.stringify(results)})`, async () => {
      await assertFailure(run(new GenerateInsightsHandler(), results), "MISSING_AGGREGATE_RESULTS", "Aggregated metrics not found");
    });
  }
});

// ------------------------------------------------------------------------------------------------
// Edge cases, boundaries, rounding

function transforms(revenue: Json, customers: Json, quantity: Json, ltv: Json, alerts: Json): Json {
  return {
    transform_sales: { total_revenue: revenue, record_count: 7 },
    transform_inventory: { total_quantity_on_hand: quantity, reorder_alerts: alerts },
    transform_customers: { record_count: customers, total_lifetime_value: ltv },
  };
}

function aggregate(rpc: Json, alerts: Json, ltv: Json, customers: Json): Json {
  return {
    aggregate_metrics: {
      total_revenue: 1234.5,
      total_customers: customers,
      revenue_per_customer: rpc,
      inventory_reorder_alerts: alerts,
      total_customer_lifetime_value: ltv,
    },
  };
}

function insightsOf(results: Json): Promise<Json> {
  return ok(run(new GenerateInsightsHandler(), results));
}

describe("edge cases", () => {
  test("transform_sales rounds averages half away from zero and sums exactly", async () => {
    const records = [
      { date: "2025-12-01", product_id: "P", quantity: 1, amount: 0.1 },
      { date: "2025-12-01", product_id: "P", quantity: 2, amount: 0.2 },
      { date: "2025-12-02", product_id: "Q", quantity: 1, amount: 0.01 },
      { date: "2025-12-02", product_id: "Q", quantity: 1, amount: 0.04 },
    ];
    const r = await ok(run(new TransformSalesHandler(), { extract_sales_data: { records } }));
    // 0.1 + 0.2 is exactly 0.3; 0.3 / 2 = 0.15; 0.05 / 2 = 0.025 rounds up to 0.03.
    assertJsonEqual(r.daily_sales["2025-12-01"], { total_amount: 0.3, order_count: 2, avg_order_value: 0.15 });
    assertJsonEqual(r.daily_sales["2025-12-02"], { total_amount: 0.05, order_count: 2, avg_order_value: 0.03 });
    assertJsonEqual(r.product_sales.P, { total_quantity: 3, total_revenue: 0.3, order_count: 2 });
    assert.equal(r.total_revenue, 0.35);
    assertJsonEqual(r.record_count, 4);
  });

  test("transform_sales keys non-string values by their JSON text", async () => {
    // The Python and Rust handlers key a JSON `7.0` as "7.0"; JavaScript reads it as the integer 7,
    // so here it groups with `7` under "7".
    const records = JSON.parse(
      '[{"date": null, "product_id": 7, "quantity": 1.5, "amount": 1},' +
        ' {"product_id": 7.0, "quantity": "x", "amount": "2"},' +
        ' {"date": {"b": 1, "a": [true, null]}, "product_id": 1e-7, "quantity": 2, "amount": 3},' +
        ' {"date": "d", "product_id": 1e20, "quantity": 1, "amount": 4}]',
    );
    const r = await ok(run(new TransformSalesHandler(), { extract_sales_data: { records } }));
    assertJsonEqual(r.daily_sales, {
      "": { total_amount: 1, order_count: 2, avg_order_value: 0.5 },
      '{"a":[true,null],"b":1}': { total_amount: 3, order_count: 1, avg_order_value: 3 },
      d: { total_amount: 4, order_count: 1, avg_order_value: 4 },
    });
    assertJsonEqual(r.product_sales, {
      "7": { total_quantity: 1.5, total_revenue: 1, order_count: 2 },
      "1e-7": { total_quantity: 2, total_revenue: 3, order_count: 1 },
      "1e+20": { total_quantity: 1, total_revenue: 4, order_count: 1 },
    });
  });

  test("transform_inventory counts warehouse alerts at the reorder point but product reorder only below", async () => {
    const records = [
      { product_id: "P", warehouse: "W1", quantity_on_hand: 50, reorder_point: 50 },
      { product_id: "P", warehouse: "W2", quantity_on_hand: 10, reorder_point: 10 },
      { product_id: "Q", warehouse: "W1", quantity_on_hand: 5, reorder_point: 20 },
      { product_id: "Q", warehouse: "W1", quantity_on_hand: 30, reorder_point: 20 },
    ];
    const r = await ok(run(new TransformInventoryHandler(), { extract_inventory_data: { records } }));
    assertJsonEqual(r.warehouse_summary, {
      W1: { total_quantity: 85, product_count: 2, reorder_alerts: 2 },
      W2: { total_quantity: 10, product_count: 1, reorder_alerts: 1 },
    });
    // P: 60 on hand vs 60 reorder points -> not below; Q: 35 vs 40 -> below.
    assertJsonEqual(r.product_inventory, {
      P: { total_quantity: 60, warehouse_count: 2, needs_reorder: false },
      Q: { total_quantity: 35, warehouse_count: 1, needs_reorder: true },
    });
    assertJsonEqual(r.reorder_alerts, 1);
    assertJsonEqual(r.total_quantity_on_hand, 95);
  });

  test("transform_inventory writes whole sums of fractional quantities as integers", async () => {
    const records = [
      { product_id: "P", warehouse: "W", quantity_on_hand: 2.5, reorder_point: 1 },
      { product_id: "P", warehouse: "W", quantity_on_hand: 1.5, reorder_point: 1 },
    ];
    const r = await ok(run(new TransformInventoryHandler(), { extract_inventory_data: { records } }));
    assertJsonEqual(r.total_quantity_on_hand, 4);
    assertJsonEqual(r.warehouse_summary.W.total_quantity, 4);
  });

  test("transform_customers segments at the exact thresholds", async () => {
    const records = [
      { tier: "a", lifetime_value: 10000 },
      { tier: "a", lifetime_value: 9999.99 },
      { tier: "b", lifetime_value: 1000 },
      { tier: "b", lifetime_value: 999.99 },
      { tier: "c", lifetime_value: 0.01 },
      { tier: "c", lifetime_value: 0.02 },
    ];
    const r = await ok(run(new TransformCustomersHandler(), { extract_customer_data: { records } }));
    assertJsonEqual(r.value_segments, { high_value: 1, medium_value: 2, low_value: 3 });
    assertJsonEqual(r.tier_analysis.a, { customer_count: 2, total_lifetime_value: 19999.99, avg_lifetime_value: 10000 });
    // 0.03 / 2 = 0.015 rounds half away from zero to 0.02.
    assert.equal(r.tier_analysis.c.avg_lifetime_value, 0.02);
    assert.equal(r.total_lifetime_value, 22000.01);
    // 22000.01 / 6 = 3666.668333... -> 3666.67
    assert.equal(r.avg_customer_value, 3666.67);
  });

  test("aggregate_metrics rounds turnover to four decimals half away from zero", async () => {
    // 0.01 / 8 = 0.00125 -> 0.0013 (banker's rounding would give 0.0012); 0.01 / 2 = 0.005 -> 0.01.
    const r = await ok(run(new AggregateMetricsHandler(), transforms(0.01, 2, 8, 1, 2)));
    assert.equal(r.inventory_turnover_indicator, 0.0013);
    assert.equal(r.revenue_per_customer, 0.01);
    assertJsonEqual(r.sales_transactions, 7);
    assertJsonEqual(r.inventory_reorder_alerts, 2);
    assert.equal(Object.keys(r).length, 10);
  });

  test("aggregate_metrics writes integer fields without a fraction", async () => {
    const r = await ok(run(new AggregateMetricsHandler(), JSON.parse(JSON.stringify(transforms(10.0, 4.0, 5.0, 8.0, 0.0)))));
    for (const key of ["total_inventory_quantity", "total_customers", "inventory_reorder_alerts", "sales_transactions"]) {
      assert.ok(Number.isInteger(r[key]), `${key} = ${r[key]}`);
    }
    assertJsonEqual(r.inventory_turnover_indicator, 2);
    assertJsonEqual(r.revenue_per_customer, 2.5);
    assertJsonEqual(r.total_revenue, 10);
    assertJsonEqual(r.total_customer_lifetime_value, 8);
  });

  test("aggregate_metrics divides by zero as zero", async () => {
    const r = await ok(run(new AggregateMetricsHandler(), transforms(100, 0, 0, 0, 0)));
    assertJsonEqual(r.revenue_per_customer, 0);
    assertJsonEqual(r.inventory_turnover_indicator, 0);
  });

  test("aggregate_metrics counts missing or non-numeric fields as zero", async () => {
    const r = await ok(run(new AggregateMetricsHandler(), transforms("100", null, true, [1], {})));
    assertJsonEqual(r, {
      total_revenue: 0,
      total_inventory_quantity: 0,
      total_customers: 0,
      total_customer_lifetime_value: 0,
      sales_transactions: 7,
      inventory_reorder_alerts: 0,
      revenue_per_customer: 0,
      inventory_turnover_indicator: 0,
      aggregation_complete: true,
      sources_included: 3,
    });
  });

  test("generate_insights at the thresholds gives no points and the other recommendations", async () => {
    // revenue_per_customer exactly 500 and avg_ltv exactly 3000: not above, not below.
    const r = await insightsOf(aggregate(500, 3, 6000, 2));
    assertJsonEqual(r.insights, [
      {
        category: "Revenue",
        finding: "Total revenue of $1234.50 with 2 customers",
        metric: 500,
        recommendation: "Customer spend is healthy",
      },
      {
        category: "Inventory",
        finding: "3 products need reordering",
        metric: 3,
        recommendation: "Review reorder points and place purchase orders",
      },
      {
        category: "Customer Value",
        finding: "Average customer lifetime value: $3000.00",
        metric: 3000,
        recommendation: "Increase customer engagement",
      },
    ]);
    assertJsonEqual(r.health_score, { score: 0, max_score: 100, rating: "Needs Improvement" });
    assertJsonEqual(r.total_metrics_analyzed, 5);
    assert.equal(r.pipeline_complete, true);
  });

  test("generate_insights recommends upselling below 500", async () => {
    const r = await insightsOf(aggregate(499.99, 0, 1, 1));
    assert.equal(r.insights[0].recommendation, "Consider upselling strategies");
    assert.equal(r.insights[0].metric, 499.99);
  });

  test("generate_insights writes whole counts without a fraction", async () => {
    const r = await insightsOf(JSON.parse(JSON.stringify(aggregate(10, 2.0, 6000, 2.0))));
    assert.equal(r.insights[0].finding, "Total revenue of $1234.50 with 2 customers");
    assert.equal(r.insights[1].finding, "2 products need reordering");
    assertJsonEqual(r.insights[1].metric, 2);
    assertJsonEqual(r.insights[2].metric, 3000);
  });

  const ladder: Array<[number, number, number, number, string]> = [
    [100, 1, 100, 0, "Needs Improvement"],
    [100, 0, 100, 30, "Needs Improvement"],
    [500.01, 1, 100, 40, "Fair"],
    [100, 0, 3000.01, 60, "Good"],
    [500.01, 0, 100, 70, "Good"],
    [500.01, 0, 3000.01, 100, "Excellent"],
  ];
  for (const [rpc, alerts, ltv, score, rating] of ladder) {
    test(`generate_insights rating follows the score ladder (${score} -> ${rating})`, async () => {
      const r = await insightsOf(aggregate(rpc, alerts, ltv, 1));
      assertJsonEqual(r.health_score, { score, max_score: 100, rating });
    });
  }

  test("generate_insights rounds the average LTV to cents half away from zero", async () => {
    // 0.05 / 2 = 0.025 -> 0.03
    const r = await insightsOf(aggregate(1, 0, 0.05, 2));
    assert.equal(r.insights[2].metric, 0.03);
    assert.equal(r.insights[2].finding, "Average customer lifetime value: $0.03");
  });

  test("generate_insights counts every key of the aggregate", async () => {
    const results = aggregate(1, 0, 1, 1);
    results.aggregate_metrics.extra = false;
    results.aggregate_metrics.more = null;
    assertJsonEqual((await insightsOf(results)).total_metrics_analyzed, 7);
  });

  test("generate_insights reads zero customers as a zero average", async () => {
    const r = await insightsOf(aggregate(0, 0, 100, 0));
    assert.equal(r.insights[0].finding, "Total revenue of $1234.50 with 0 customers");
    assertJsonEqual(r.insights[2].metric, 0);
    assert.equal(r.insights[2].finding, "Average customer lifetime value: $0.00");
  });
});
