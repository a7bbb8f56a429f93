// The enqueue panel: a kind, a form generated from its input schema, the options.

import { jobEnqueue, type ErrorBody, type Job, type KindInfo, type NewJob } from "../bindings";
import { h, messageOf, mount } from "../dom";
import { collect, fieldsOf, type Field } from "../form";
import { t } from "../i18n";

export function enqueuePanel(kinds: KindInfo[], enqueued: (job: Job) => void): HTMLElement {
  const kind = h(
    "select",
    { id: "enqueue-kind" },
    ...kinds.map((k) => h("option", { value: k.name }, k.name)),
  );
  const description = h("p", { class: "hint", id: "enqueue-description" });
  const fieldsBox = h("div", { class: "stack", id: "enqueue-fields" });
  const runAt = h("input", { id: "opt-run-at", type: "datetime-local", step: "1" });
  const priority = h("input", { id: "opt-priority", type: "number", step: "1", placeholder: "0" });
  const maxAttempts = h("input", { id: "opt-max-attempts", type: "number", min: "1", step: "1", placeholder: "3" });
  const key = h("input", { id: "opt-key", autocomplete: "off" });
  const message = h("p", { class: "message", id: "enqueue-message", role: "status" });
  const formError = h("p", { class: "error", id: "enqueue-error", role: "alert" });
  const submit = h("button", { class: "primary", id: "enqueue-submit", type: "submit" }, t("enqueue.submit"));

  let fields: Field[] = [];
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>();
  const errors = new Map<string, HTMLElement>();

  function showKind() {
    const info = kinds.find((k) => k.name === kind.value);
    description.textContent = info?.description ?? "";
    fields = fieldsOf(info?.input_schema ?? null);
    inputs.clear();
    errors.clear();
    mount(
      fieldsBox,
      ...fields.map((field) => {
        let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
        if (field.type === "enum") {
          input = h("select", {}, ...(field.options ?? []).map((o) => h("option", { value: o }, o)));
        } else if (field.type === "json") {
          input = h("textarea", { rows: "3", spellcheck: "false" });
        } else if (field.type === "boolean") {
          input = h("input", { type: "checkbox" });
        } else {
          const numeric = field.type === "integer" || field.type === "number";
          input = h("input", {
            type: numeric ? "number" : "text",
            step: field.type === "integer" ? "1" : numeric ? "any" : undefined,
            min: field.minimum,
            max: field.maximum,
          });
        }
        input.name = field.name;
        input.id = `field-${field.name}`;
        const error = h("span", { class: "field-error", id: `error-${field.name}` });
        inputs.set(field.name, input);
        errors.set(field.name, error);
        return h(
          "label",
          { class: field.type === "boolean" ? "check" : undefined },
          h("span", {}, field.name, field.required ? h("span", { class: "required" }, " *") : null),
          input,
          field.description ? h("small", { class: "hint" }, field.description) : null,
          error,
        );
      }),
    );
  }

  function showErrors(byField: Record<string, string>) {
    for (const [name, element] of errors) {
      element.textContent = byField[name] ?? "";
      inputs.get(name)?.setAttribute("aria-invalid", byField[name] ? "true" : "false");
    }
  }

  const form = h(
    "form",
    // The form checks input itself, showing each message beside its field.
    { class: "stack", id: "enqueue-form", novalidate: true },
    h("label", {}, t("enqueue.kind"), kind),
    description,
    fieldsBox,
    h(
      "details",
      {},
      h("summary", {}, t("enqueue.options")),
      h(
        "div",
        { class: "stack" },
        h("label", {}, t("enqueue.runAt"), runAt),
        h("label", {}, t("enqueue.priority"), priority),
        h("label", {}, t("enqueue.maxAttempts"), maxAttempts),
        h("label", {}, t("enqueue.key"), key),
      ),
    ),
    submit,
    formError,
    message,
  );
  kind.addEventListener("change", () => {
    showKind();
    message.textContent = "";
    formError.textContent = "";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    formError.textContent = "";
    const raw: Record<string, string | boolean> = {};
    for (const [name, input] of inputs) {
      raw[name] = input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value;
    }
    const { input, errors: invalid } = collect(fields, raw);
    showErrors(invalid);
    if (Object.keys(invalid).length > 0) return;
    const job: NewJob = {
      kind: kind.value,
      context: input,
      run_at: runAt.value ? new Date(runAt.value).toISOString() : null,
      priority: priority.value ? Number(priority.value) : null,
      max_attempts: maxAttempts.value ? Number(maxAttempts.value) : null,
      idempotency_key: key.value.trim() || null,
    };
    submit.disabled = true;
    try {
      const created = await jobEnqueue(job);
      message.textContent = t("enqueue.done", { id: created.id });
      key.value = "";
      enqueued(created);
    } catch (e) {
      const body = e as Partial<ErrorBody>;
      // The server names the field it refused: show the message beside it.
      if (body.field && errors.has(body.field.split(/[.[]/)[0])) {
        showErrors({ [body.field.split(/[.[]/)[0]]: messageOf(e) });
      } else {
        formError.textContent = messageOf(e);
      }
    } finally {
      submit.disabled = false;
    }
  });
  showKind();
  return h("section", { class: "panel", id: "enqueue-panel" }, h("h2", {}, t("enqueue.title")), form);
}
