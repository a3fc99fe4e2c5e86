/**
 * The value rules of `examples/blog/blog_support.ts` (spec §0.7, §0.8): blank values, exact money,
 * serde_json's number and object text, the regex dialect, timestamps and ids. The twin of the unit
 * tests in `workers/rust/src/handlers/blog/support.rs`.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  Dec,
  Now,
  centsText,
  compilePattern,
  decimal,
  floatText,
  fullMatch,
  integer,
  isBlank,
  isTrue,
  isoMs,
  jsonText,
  moneyJson,
  moneyText,
  randomHex,
  randomHexUpper,
  randomInt,
  roundCents,
  textDate,
} from "../../examples/blog/blog_support";

describe("blog support", () => {
  test("blank covers empty values but not zero or false", () => {
    for (const v of [null, undefined, "", "  \t\u000b\u000c\r\n", [], {}]) {
      assert.ok(isBlank(v), JSON.stringify(v));
    }
    for (const v of [0, false, "x", [0], { a: null }, "\u00a0"]) {
      assert.ok(!isBlank(v), JSON.stringify(v));
    }
  });

  test("only the boolean true is true", () => {
    assert.ok(isTrue(true));
    for (const v of ["true", 1, null, undefined]) {
      assert.ok(!isTrue(v));
    }
  });

  test("money is exact and rounds half away from zero", () => {
    const price = decimal(29.99) as InstanceType<typeof Dec>;
    assert.equal(price.times(3).toString(), "89.97");
    assert.equal(roundCents(new Dec("1.005")).toString(), "1.01");
    assert.equal(roundCents(new Dec("-1.005")).toString(), "-1.01");
    assert.equal(moneyJson(new Dec("124.760")), 124.76);
    assert.equal(moneyText(new Dec(6100)), "$6100.00");
    assert.equal(moneyText(new Dec("-0.001")), "$-0.00", "a negative amount keeps its sign");
    assert.equal(centsText(4999), "$49.99");
  });

  test("decimal reads only numbers within the Rust decimal range", () => {
    assert.equal(decimal("1"), null);
    assert.equal(decimal(true), null);
    assert.equal(decimal(1e30), null, "beyond 2^96");
    assert.equal(decimal(1e-29), null, "more than 28 decimals");
    assert.ok(decimal(1e-28)?.eq(new Dec("1e-28")));
    assert.equal(decimal(0.1)?.plus(decimal(0.2) as InstanceType<typeof Dec>).toString(), "0.3");
  });

  test("integer reads whole numbers within 64 bits", () => {
    assert.equal(integer(2), 2);
    assert.equal(integer(JSON.parse("2.0")), 2);
    assert.equal(integer(1.5), null);
    assert.equal(integer(1e19), null, "beyond i64");
    assert.equal(integer("2"), null);
  });

  test("float text follows serde_json", () => {
    const cases: Array<[number, string]> = [
      [5, "5.0"],
      [0.00001, "0.00001"],
      [0.000001, "1e-6"],
      [1.5e-7, "1.5e-7"],
      [1e15, "1000000000000000.0"],
      [1e16, "1e+16"],
      [1.25e20, "1.25e+20"],
      [-2.5, "-2.5"],
      [0, "0.0"],
      [123.456, "123.456"],
    ];
    for (const [f, text] of cases) {
      assert.equal(floatText(f), text, String(f));
    }
  });

  test("JSON text is compact with keys sorted by code point, numbers as serde_json writes them", () => {
    assert.equal(jsonText({ b: 1, a: [true, null, "x\n\"y\""], "\u{1f600}": 0, "\uffff": 1 }), '{"a":[true,null,"x\\n\\"y\\""],"b":1,"\uffff":1,"\u{1f600}":0}');
    assert.equal(jsonText(1e16), "10000000000000000", "a whole number in the 64-bit range is an integer");
    assert.equal(jsonText(1.8446744073709552e19), "1.8446744073709552e+19", "beyond u64 is a float");
    assert.equal(jsonText(-9223372036854775808), "-9223372036854775808");
    assert.equal(jsonText(0.1), "0.1");
    assert.equal(jsonText("ü"), '"ü"');
  });

  test("full match rejects partial matches and a trailing newline", () => {
    assert.ok(fullMatch("\\d{3}", "123"));
    assert.ok(!fullMatch("\\d{3}", "1234"));
    assert.ok(!fullMatch("\\d{3}", "123\n"));
    assert.ok(!fullMatch("\\d", "\u0663"), "Arabic-Indic digits are not \\d");
    assert.ok(fullMatch("a.c", "abc"));
    assert.ok(fullMatch("a.c", "a\rc"), ". excludes only \\n");
    assert.ok(!fullMatch("a.c", "a\nc"));
  });

  test("\\s is the ASCII set, inside and outside classes", () => {
    const space = compilePattern("a\\sb");
    for (const c of [" ", "\t", "\n", "\u000b", "\u000c", "\r"]) {
      assert.ok(space.test(`a${c}b`), JSON.stringify(c));
    }
    assert.ok(!space.test("a\u00a0b"), "a no-break space is not \\s");
    const email = compilePattern("[^@\\s]+@[^@\\s]+");
    assert.ok(email.test("a@b\u00a0c"));
    assert.ok(!email.test("a@b\u000bc"));
    assert.ok(!email.test("a@b@c"));
    assert.ok(compilePattern("\\S+").test("a\u00a0b"));
  });

  test("timestamps have milliseconds and Z, text dates English month names", () => {
    const t = new Date("2026-01-02T03:04:05.678Z");
    assert.equal(isoMs(t), "2026-01-02T03:04:05.678Z");
    assert.equal(textDate(t), "January 02, 2026");
    const now = new Now(t);
    assert.equal(now.compactDate(), "20260102");
    assert.equal(isoMs(now.plusDays(7)), "2026-01-09T03:04:05.678Z");
    assert.equal(textDate(now.plusDays(-2)), "December 31, 2025");
  });

  test("random ids have the requested alphabet and length", () => {
    assert.match(randomHex(24), /^[0-9a-f]{24}$/);
    assert.match(randomHexUpper(8), /^[0-9A-F]{8}$/);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const n = randomInt(1, 5);
      assert.ok(n >= 1 && n <= 5);
      seen.add(n);
    }
    assert.equal(seen.size, 5, "both ends are reachable");
  });
});
