import { describe, expect, it } from "vitest";
import { collect, fieldsOf } from "../src/form";

// The shape schemars gives the built-in `sleep` kind, plus other field types.
const schema = {
  type: "object",
  required: ["seconds", "label"],
  properties: {
    seconds: { type: "integer", minimum: 0, maximum: 86400, description: "How long" },
    label: { type: "string" },
    ratio: { type: ["number", "null"] },
    loud: { type: "boolean" },
    mode: { enum: ["fast", "slow"] },
    extra: { type: "object" },
  },
};

describe("a form from a JSON Schema", () => {
  it("has a field per property with its type and limits", () => {
    const fields = fieldsOf(schema);
    expect(fields.map((f) => [f.name, f.type, f.required])).toEqual([
      ["seconds", "integer", true],
      ["label", "string", true],
      ["ratio", "number", false],
      ["loud", "boolean", false],
      ["mode", "enum", false],
      ["extra", "json", false],
    ]);
    expect(fields[0]).toMatchObject({ minimum: 0, maximum: 86400, description: "How long" });
    expect(fieldsOf({ type: "object" })).toEqual([]);
  });

  it("collects typed input", () => {
    const { input, errors } = collect(fieldsOf(schema), {
      seconds: "5", label: " hi ", ratio: "0.5", loud: true, mode: "slow", extra: '{"a":1}',
    });
    expect(errors).toEqual({});
    expect(input).toEqual({ seconds: 5, label: "hi", ratio: 0.5, loud: true, mode: "slow", extra: { a: 1 } });
  });

  it("reports each bad field and leaves optional empty ones out", () => {
    const { input, errors } = collect(fieldsOf(schema), { seconds: "1.5", label: "", extra: "{" });
    expect(Object.keys(errors).sort()).toEqual(["extra", "label", "seconds"]);
    expect(input).toEqual({ loud: false });
    expect(collect(fieldsOf(schema), { seconds: "90000", label: "x" }).errors.seconds).toMatch(/86400/);
    expect(collect(fieldsOf(schema), { seconds: "-1", label: "x" }).errors.seconds).toMatch(/0/);
  });
});
