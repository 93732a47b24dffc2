import { describe, expect, test } from "bun:test";
import { jsonTextProblem } from "./json-text";

const code = (text: string) => {
  JSON.parse(text); // every case is JSON.parse-valid: the checker runs after it
  return jsonTextProblem(text)?.code ?? null;
};

describe("jsonTextProblem", () => {
  test("accepts ordinary JSON, including safe integers, floats and escapes", () => {
    for (const ok of [
      '{"a":1,"b":[1,2,{"a":2}],"c":{"a":3}}',
      "[9007199254740991,-9007199254740991,0,-0]",
      '{"f":1.1234567890123457,"e":1e300,"g":-2.5E-10,"h":12345678901234567000.0,"i":0.1,"j":1.0,"k":-0.0,"l":0e-500,"m":5e-324,"n":1.7976931348623157e308,"o":100E-2,"p":0.30000000000000004}',
      '{"s":"q\\"\\\\\\n\\u0041\\ud83d\\ude00 ok","t":"\\\\u0061"}',
      '{"a":{},"b":[],"c":[{}],"d":{"e":{"f":{}}},"a2":"x"}',
      '{"x":"a","y":"a"}',
      '"just a string"',
      "[[[[[]]]]]",
      '{"\\u0061b":1,"ab2":2}',
    ]) {
      expect([ok, code(ok)]).toEqual([ok, null]);
    }
  });

  test("refuses integers beyond ±(2^53-1), naming the number", () => {
    expect(code("[9007199254740992]")).toBe("UNSAFE_INTEGER");
    expect(code('{"clock":9007199254740993}')).toBe("UNSAFE_INTEGER");
    expect(code("[-9007199254740992]")).toBe("UNSAFE_INTEGER");
    expect(code('{"body":{"n":123456789012345678901234567890}}')).toBe("UNSAFE_INTEGER");
    expect(jsonTextProblem("[1, 99999999999999999]")!.message).toContain("99999999999999999");
  });

  test("refuses a number whose value a double cannot carry, saying what would be stored", () => {
    for (const bad of ["9007199254740993.0", "1e-400", "1e400", "-1e400", "0.10000000000000001", "1.12345678901234567890", "12345678901234567890.5", "2e-324", "1.7976931348623159e308"]) {
      expect([bad, code(`{"n":${bad}}`)]).toEqual([bad, "INEXACT_NUMBER"]);
    }
    expect(jsonTextProblem('{"n":9007199254740993.0}')!.message).toBe(
      "request body holds the number 9007199254740993.0, which a JSON number (an IEEE 754 double) cannot carry exactly: it would be stored as 9007199254740992 — send it as a string, or as the value that is stored",
    );
    expect(jsonTextProblem("[1e400]")!.message).toContain("cannot carry exactly: it is beyond the range of a double");
    expect(jsonTextProblem("[1e-400]")!.message).toContain("it would be stored as 0 ");
  });

  test("refuses a key given twice in one object, also when spelled with escapes", () => {
    expect(code('{"a":1,"a":2}')).toBe("DUPLICATE_KEY");
    expect(code('{"a":1,"\\u0061":2}')).toBe("DUPLICATE_KEY");
    expect(code('{"x":{"b":[{"c":1,"d":2,"c":3}]}}')).toBe("DUPLICATE_KEY");
    expect(code('{"a":{"a":1},"b":{"a":1},"a":0}')).toBe("DUPLICATE_KEY");
    const many = "{" + Array.from({ length: 500 }, (_, i) => `"k${i}":${i}`).join(",") + ',"k250":1}';
    expect(code(many)).toBe("DUPLICATE_KEY");
    expect(jsonTextProblem('{"thread":"a","thread":"b"}')!.message).toContain('"thread"');
  });

  test("refuses lone surrogates written as escapes", () => {
    expect(code('["\\ud800"]')).toBe("LONE_SURROGATE");
    expect(code('["x\\udc00"]')).toBe("LONE_SURROGATE");
    expect(code('["\\ud800\\u0041"]')).toBe("LONE_SURROGATE");
    expect(code('["\\ud800x\\udc00"]')).toBe("LONE_SURROGATE");
    expect(code('{"\\uDBFF":1}')).toBe("LONE_SURROGATE");
    expect(code('["\\ud800\\n"]')).toBe("LONE_SURROGATE");
  });

  test("a deeply nested document does not overflow the checker", () => {
    const deep = "[".repeat(5000) + "]".repeat(5000);
    expect(code(deep)).toBeNull();
  });
});
