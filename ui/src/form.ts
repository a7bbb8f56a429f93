// A job kind's input form, generated from its JSON Schema, and the input it collects.

import type { JsonValue } from "./bindings";
import { describe, errorBody } from "./errors";
import { t } from "./i18n.svelte";

export type FieldType = "string" | "integer" | "number" | "boolean" | "enum" | "json";

export interface Field {
  name: string;
  type: FieldType;
  required: boolean;
  description: string;
  minimum?: number;
  maximum?: number;
  options?: string[];
}

type Schema = { [key: string]: JsonValue };

function typeOf(property: Schema): FieldType {
  if (Array.isArray(property.enum) && property.enum.every((v) => typeof v === "string")) {
    return "enum";
  }
  const type = Array.isArray(property.type)
    ? property.type.find((t) => t !== "null")
    : property.type;
  switch (type) {
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return type;
    default:
      return "json";
  }
}

/** The form's fields, in the schema's order. */
export function fieldsOf(schema: JsonValue): Field[] {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return [];
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  return Object.entries(properties).map(([name, property]) => ({
    name,
    type: typeOf(property),
    required: required.includes(name),
    description: typeof property.description === "string" ? property.description : "",
    minimum: typeof property.minimum === "number" ? property.minimum : undefined,
    maximum: typeof property.maximum === "number" ? property.maximum : undefined,
    options: Array.isArray(property.enum) ? (property.enum as string[]) : undefined,
  }));
}

/** The input from the form's raw values, or an error per field. */
export function collect(
  fields: Field[],
  raw: Record<string, string | boolean>,
): { input: Record<string, JsonValue>; errors: Record<string, string> } {
  const input: Record<string, JsonValue> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const value = raw[field.name];
    if (field.type === "boolean") {
      input[field.name] = value === true;
      continue;
    }
    const text = typeof value === "string" ? value.trim() : "";
    if (text === "") {
      if (field.required) errors[field.name] = t("form.required");
      continue;
    }
    switch (field.type) {
      case "integer":
      case "number": {
        const n = Number(text);
        if (!Number.isFinite(n)) {
          errors[field.name] = t("form.number");
        } else if (field.type === "integer" && !Number.isInteger(n)) {
          errors[field.name] = t("form.integer");
        } else if (field.minimum !== undefined && n < field.minimum) {
          errors[field.name] = t("form.min", { n: field.minimum });
        } else if (field.maximum !== undefined && n > field.maximum) {
          errors[field.name] = t("form.max", { n: field.maximum });
        } else {
          input[field.name] = n;
        }
        break;
      }
      case "json":
        try {
          input[field.name] = JSON.parse(text) as JsonValue;
        } catch {
          errors[field.name] = t("form.json");
        }
        break;
      default:
        input[field.name] = text;
    }
  }
  return { input, errors };
}

/** The raw values of `fields` in a form's data (named `field.<name>`). */
export function rawValues(fields: Field[], data: FormData): Record<string, string | boolean> {
  return Object.fromEntries(
    fields.map((f) => [
      f.name,
      f.type === "boolean" ? data.has(`field.${f.name}`) : String(data.get(`field.${f.name}`) ?? ""),
    ]),
  );
}

/** Puts `input`'s values into the form's fields (a job's or a schedule's input). */
export function fill(form: HTMLFormElement | undefined, fields: Field[], input: JsonValue): void {
  const values = (input && typeof input === "object" && !Array.isArray(input) ? input : {}) as Record<string, JsonValue>;
  for (const field of fields) {
    const element = form?.elements.namedItem(`field.${field.name}`) as HTMLInputElement | null;
    const value = values[field.name];
    if (!element || value === undefined) continue;
    if (field.type === "boolean") element.checked = value === true;
    else element.value = typeof value === "string" ? value : JSON.stringify(value);
  }
}

/** A refused save in the form's terms: the server's words beside the field it names
 *  (`items[2].name` is `items`) when the form has it, else for the whole form. */
export function refusal(fields: Field[], error: unknown): { fieldErrors: Record<string, string>; formError: string } {
  const body = errorBody(error);
  const name = body?.field?.split(/[.[]/)[0];
  if (body && name && fields.some((f) => f.name === name)) return { fieldErrors: { [name]: body.message }, formError: "" };
  return { fieldErrors: {}, formError: describe(error) };
}
