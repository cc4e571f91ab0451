// @ts-check
// A stand-in for Stripe.js, for the browser test only (never served by compass): the part of
// Stripe.js that the payment page uses, `Stripe(key)`, `elements({clientSecret})`,
// `create("payment")`, `mount` and `confirmPayment`, as Stripe documents them. It refuses
// what Stripe.js refuses (an IntegrationError), mounts its card fields in an iframe from its
// own origin, confirms the PaymentIntent at the Stripe fake with the publishable key and the
// client secret as Stripe.js does, then navigates to the return URL with the parameters
// Stripe adds, or resolves with Stripe's error shape.
//
// Every call the page makes is written to the console ("stripe-standin {json}") so that the
// test can replay it through TypeScript against the types of @stripe/stripe-js: an option
// Stripe does not declare fails the test even where this stand-in would take it. This file
// itself is type-checked against the same types (`@ts-check`).
//
// Served as `.../stripe-standin.js?api=<Stripe API base>&latency=<ms>`.
(function () {
  /** @typedef {import("@stripe/stripe-js").StripeError} StripeError */

  const script = /** @type {HTMLScriptElement} */ (document.currentScript);
  const source = new URL(script.src);
  const api = source.searchParams.get("api") || "https://api.stripe.com";
  const latency = Number(source.searchParams.get("latency") || "0");
  const frameUrl = new URL("element.html", source).href;
  let made = 0;

  /** A receiver or a value the page passed: an object of ours is named by its id. */
  const ids = new WeakMap();

  /** @param {unknown} value @returns {unknown} */
  function recordable(value) {
    if (value !== null && typeof value === "object") {
      const id = ids.get(value);
      if (id) return { $ref: id };
      if (value instanceof HTMLElement) return { $element: value.id };
      if (Array.isArray(value)) return value.map(recordable);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, recordable(v)]));
    }
    return value === undefined ? { $undefined: true } : value;
  }

  /** @param {string} on @param {string} method @param {unknown[]} args @param {object | null} [made] */
  function record(on, method, args, made) {
    const entry = { on, method, args: args.map(recordable), made: made && ids.get(made) };
    console.info("stripe-standin " + JSON.stringify(entry));
  }

  /** @template {object} T @param {T} object @param {string} kind @returns {T} */
  function named(object, kind) {
    made += 1;
    ids.set(object, `${kind}${made}`);
    return object;
  }

  class IntegrationError extends Error {
    /** @param {string} message */
    constructor(message) {
      super(message);
      this.name = "IntegrationError";
    }
  }

  /** @param {number} ms */
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /**
   * The Payment Element: card fields in an iframe of this script's origin, as Stripe's are in
   * one of js.stripe.com (so the page's frame-src is exercised).
   */
  class PaymentElement {
    constructor() {
      /** @type {HTMLIFrameElement | null} */
      this.frame = null;
      this.asked = 0;
    }

    /** @param {string | HTMLElement} target */
    mount(target) {
      record(ids.get(this), "mount", [target]);
      const node = typeof target === "string" ? document.querySelector(target) : target;
      if (!(node instanceof HTMLElement)) {
        throw new IntegrationError(
          "The selector you specified (" + String(target) + ") applies to no DOM elements that are currently on the page.",
        );
      }
      const frame = document.createElement("iframe");
      frame.src = frameUrl;
      frame.title = "Secure payment input frame";
      frame.name = "stripe-standin-element";
      frame.setAttribute("allow", "payment *");
      frame.style.cssText = "width:100%;height:190px;border:0;display:block";
      node.replaceChildren(frame);
      this.frame = frame;
    }

    /** @returns {Promise<{number: string, exp_month: string, exp_year: string, cvc: string} | {error: StripeError}>} */
    collect() {
      const frame = this.frame;
      if (!frame || !frame.contentWindow) {
        return Promise.resolve({ error: { type: "validation_error", message: "The payment form is not mounted." } });
      }
      const asked = ++this.asked;
      return new Promise((resolve) => {
        /** @param {MessageEvent} event */
        const answer = (event) => {
          if (event.origin !== source.origin || event.data?.asked !== asked) return;
          window.removeEventListener("message", answer);
          resolve(event.data.card ?? { error: event.data.error });
        };
        window.addEventListener("message", answer);
        frame.contentWindow?.postMessage({ collect: asked }, source.origin);
      });
    }
  }

  /**
   * @param {string} key
   * @param {string} clientSecret
   */
  function makeElements(key, clientSecret) {
    /** @type {PaymentElement | null} */
    let payment = null;
    return {
      key,
      clientSecret,
      /** @param {string} type @param {object} [options] */
      create(type, options) {
        const args = options === undefined ? [type] : [type, options];
        if (type !== "payment") {
          record(ids.get(this), "create", args);
          throw new IntegrationError("This stand-in makes only the Payment Element, not " + type);
        }
        if (payment) {
          record(ids.get(this), "create", args);
          throw new IntegrationError("Can only create one Element of type payment.");
        }
        payment = named(new PaymentElement(), "element");
        record(ids.get(this), "create", args, payment);
        return payment;
      },
      payment: () => payment,
    };
  }

  /**
   * @param {string} key
   * @param {object} [options]
   */
  function Stripe(key, options) {
    const stripe = named({}, "stripe");
    record("window", "Stripe", options === undefined ? [key] : [key, options], stripe);
    if (typeof key !== "string" || !/^pk_(test|live)_\w+$/.test(key)) {
      throw new IntegrationError("Invalid value for Stripe(): apiKey should be a string of the form pk_test_... (got " + JSON.stringify(key) + ")");
    }
    return Object.assign(stripe, {
      /** @param {{clientSecret?: string, mode?: string}} [options] */
      elements(options) {
        const secret = options?.clientSecret;
        if (secret === undefined && options?.mode === undefined) {
          record(ids.get(stripe), "elements", [options]);
          throw new IntegrationError(
            "In order to create a payment element, you must pass a clientSecret or mode when creating the Elements group.",
          );
        }
        if (typeof secret !== "string" || !/^pi_\w+_secret_\w+$/.test(secret)) {
          record(ids.get(stripe), "elements", [options]);
          throw new IntegrationError(
            "Invalid value for elements(): clientSecret should be a client secret of the form ${id}_secret_${secret}. You specified: " + String(secret) + ".",
          );
        }
        const elements = named(makeElements(key, secret), "elements");
        record(ids.get(stripe), "elements", [options], elements);
        return elements;
      },

      /**
       * @param {{elements?: ReturnType<typeof makeElements>, clientSecret?: string, confirmParams?: {return_url?: string}, redirect?: string}} options
       * @returns {Promise<{error: StripeError}>}
       */
      async confirmPayment(options) {
        record(ids.get(stripe), "confirmPayment", [options]);
        const elements = options?.elements;
        const element = elements?.payment();
        if (!elements || !element) {
          throw new IntegrationError("stripe.confirmPayment(): expected an Elements group with a mounted Payment Element.");
        }
        const returnUrl = options.confirmParams?.return_url;
        if (options.redirect !== "if_required" && !returnUrl) {
          throw new IntegrationError(
            "stripe.confirmPayment(): the `confirmParams.return_url` argument is required unless passing `redirect: 'if_required'`",
          );
        }
        const card = await element.collect();
        if ("error" in card) return { error: card.error };
        await sleep(latency);
        const intent = elements.clientSecret.split("_secret_")[0];
        const body = new URLSearchParams({
          key,
          client_secret: elements.clientSecret,
          "payment_method_data[type]": "card",
          "payment_method_data[card][number]": card.number,
          "payment_method_data[card][exp_month]": card.exp_month,
          "payment_method_data[card][exp_year]": card.exp_year,
          "payment_method_data[card][cvc]": card.cvc,
          return_url: returnUrl || "",
          use_stripe_sdk: "true",
        });
        let answer;
        try {
          const response = await fetch(`${api}/v1/payment_intents/${intent}/confirm`, { method: "POST", body });
          answer = await response.json();
        } catch (err) {
          return { error: { type: "api_connection_error", message: "An error occurred with our connection to Stripe. Request was retried 0 times." } };
        }
        if (answer.error) return { error: answer.error };
        const status = answer.status;
        if (status !== "succeeded" && status !== "processing") {
          return { error: answer.last_payment_error ?? { type: "api_error", message: `The payment is ${status}.` } };
        }
        const to = new URL(/** @type {string} */ (returnUrl));
        to.searchParams.set("payment_intent", answer.id);
        to.searchParams.set("payment_intent_client_secret", elements.clientSecret);
        to.searchParams.set("redirect_status", status);
        window.location.assign(to.href);
        // Stripe's promise never settles once the page is on its way to the return URL.
        return new Promise(() => {});
      },
    });
  }

  // @ts-ignore: the global that Stripe.js defines
  window.Stripe = Stripe;
})();
