// The Stripe Payment Element: the card never touches our server. Values come from data-
// attributes (escaped by the template), so no page script is inline. On success Stripe.js
// takes the customer to the order's status page (the return URL); on failure its message is
// shown and the button works again. tests/it/browser.rs runs this in Chromium.
(function () {
  var form = document.getElementById("payment-form");
  var message = document.getElementById("payment-message");
  var button = document.getElementById("pay");
  if (!form || typeof Stripe === "undefined") {
    if (message) message.textContent = "The payment form could not load. Check your connection and reload.";
    return;
  }
  var stripe = Stripe(form.dataset.publishableKey);
  var elements = stripe.elements({ clientSecret: form.dataset.clientSecret });
  elements.create("payment").mount("#payment-element");
  var confirming = false;
  var failed = "Something went wrong with the payment. Please try again: an order is never charged twice.";
  function again(text) {
    message.textContent = text;
    confirming = false;
    button.disabled = false;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    // One confirmation at a time: a second click, or Enter, while Stripe confirms does nothing.
    if (confirming) return;
    confirming = true;
    button.disabled = true;
    message.textContent = "";
    stripe.confirmPayment({ elements: elements, confirmParams: { return_url: form.dataset.returnUrl } })
      .then(function (result) {
        // Only reached on an error: on success the browser is on its way to the return URL.
        var error = result && result.error;
        if (!error) return;
        // Stripe's advice: its own words for the card's and the form's errors, ours otherwise.
        again(error.type === "card_error" || error.type === "validation_error"
          ? error.message
          : failed);
      }, function () {
        again(failed);
      });
  });
})();
