// @ts-check
// The stand-in Payment Element's frame (tests only): answers its parent page's request for the
// card with the card, or with the validation error Stripe.js gives for an incomplete field.
window.addEventListener("message", (event) => {
  if (event.source !== window.parent || typeof event.data?.collect !== "number") return;
  /** @param {string} id */
  const value = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id)).value.replace(/\s+/g, "");
  const number = value("number");
  const [month, year] = value("expiry").split("/");
  const cvc = value("cvc");
  /** @type {{type: string, code: string, message: string} | null} */
  let error = null;
  if (!/^\d{16}$/.test(number)) {
    error = { type: "validation_error", code: "incomplete_number", message: "Your card number is incomplete." };
  } else if (!/^\d{2}$/.test(month || "") || !/^\d{2}$/.test(year || "")) {
    error = { type: "validation_error", code: "incomplete_expiry", message: "Your card's expiration date is incomplete." };
  } else if (!/^\d{3,4}$/.test(cvc)) {
    error = { type: "validation_error", code: "incomplete_cvc", message: "Your card's security code is incomplete." };
  }
  const card = error ? null : { number, exp_month: month, exp_year: year, cvc };
  /** @type {Window} */ (event.source).postMessage({ asked: event.data.collect, card, error }, event.origin);
});
