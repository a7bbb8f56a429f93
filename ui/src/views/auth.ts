// Sign in with a password, create an account, or sign in with an emailed code.

import {
  authSendCode,
  authSignIn,
  authSignUp,
  authVerifyCode,
  connectionDisconnect,
  type ConnectionView,
} from "../bindings";
import { h, messageOf, mount } from "../dom";
import { t } from "../i18n";

export function authScreen(
  root: Element,
  connection: ConnectionView,
  signedIn: () => void,
  leave: () => void,
): void {
  const message = h("p", { class: "message", id: "auth-message", role: "status" });
  const error = h("p", { class: "error", id: "auth-error", role: "alert" });
  if (connection.session.state === "ended") {
    message.textContent = t("auth.ended", { reason: connection.session.reason });
  }
  const email = h("input", { id: "auth-email", type: "email", required: true, autocomplete: "username" });
  const password = h("input", { id: "auth-password", type: "password", autocomplete: "current-password" });
  const code = h("input", { id: "auth-code", inputmode: "numeric", autocomplete: "one-time-code" });
  const codeRow = h(
    "div",
    { class: "stack", id: "code-row", hidden: true },
    h("label", {}, t("auth.code"), code),
    h("button", { id: "auth-verify", type: "button", onclick: () => run(verify) }, t("auth.verify")),
  );

  const buttons: HTMLButtonElement[] = [];
  async function run(action: () => Promise<void>) {
    error.textContent = "";
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action();
    } catch (e) {
      error.textContent = messageOf(e);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
  async function signIn() {
    await authSignIn(email.value, password.value);
    signedIn();
  }
  async function signUp() {
    const outcome = await authSignUp(email.value, password.value);
    if (outcome.outcome === "signed_in") signedIn();
    else message.textContent = t("auth.confirmationSent", { email: outcome.email ?? email.value });
  }
  async function sendCode() {
    await authSendCode(email.value);
    message.textContent = t("auth.codeSent", { email: email.value });
    codeRow.hidden = false;
    code.focus();
  }
  async function verify() {
    await authVerifyCode(email.value, code.value);
    signedIn();
  }

  const signInButton = h("button", { class: "primary", id: "auth-sign-in", type: "submit" }, t("auth.signIn"));
  const signUpButton = h("button", { id: "auth-sign-up", type: "button", onclick: () => run(signUp) }, t("auth.signUp"));
  const codeButton = h("button", { id: "auth-send-code", type: "button", onclick: () => run(sendCode) }, t("auth.useCode"));
  buttons.push(signInButton, signUpButton, codeButton);
  const form = h(
    "form",
    { class: "stack" },
    h("label", {}, t("auth.email"), email),
    h("label", {}, t("auth.password"), password),
    h("div", { class: "row" }, signInButton, signUpButton, codeButton),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(signIn);
  });

  mount(
    root,
    h(
      "section",
      { class: "card narrow", id: "auth-screen" },
      h("h1", {}, t("auth.title")),
      h("p", { class: "muted" }, connection.sandbox ? t("status.sandbox") : connection.url),
      form,
      codeRow,
      message,
      error,
      h(
        "button",
        {
          class: "link",
          id: "auth-other-project",
          type: "button",
          onclick: async () => {
            await connectionDisconnect();
            leave();
          },
        },
        t("auth.otherProject"),
      ),
    ),
  );
  email.focus();
}
