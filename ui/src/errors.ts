// What the UI says when a command fails: the error's code picks a localized summary
// from one table (never the message text); the server's own words follow as detail.

import type { ErrorBody, ErrorCode } from "./bindings";
import { t, type Key } from "./i18n.svelte";

const SUMMARIES: Record<ErrorCode, Key> = {
  auth_expired: "error.auth_expired",
  network: "error.network",
  validation: "error.validation",
  conflict: "error.conflict",
  not_found: "error.not_found",
  forbidden: "error.forbidden",
  cancelled: "error.cancelled",
  internal: "error.internal",
};

/** The `{code, message, field?}` a command rejected with, if that is what it is. */
export function errorBody(error: unknown): ErrorBody | null {
  if (error && typeof error === "object" && "code" in error && "message" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string" && code in SUMMARIES) return error as ErrorBody;
  }
  return null;
}

/** A failed command in the user's language: the summary for its code, then the detail. */
export function describe(error: unknown): string {
  const body = errorBody(error);
  if (!body) return error instanceof Error ? error.message : String(error);
  const summary = t(SUMMARIES[body.code]);
  return body.message ? `${summary}: ${body.message}` : summary;
}
