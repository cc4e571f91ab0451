// A customer's purchase in headless Chromium, driven by tests/it/browser.rs: the intake form
// filled in like a person would, a declined card, the same order paid, the redirect to the
// status page and the page moving on by itself to the finished report. Run by the Rust test,
// which owns the servers and the database:
//
//   node purchase.mjs '{"base": "...", "shots": "dir", "chromium": "/usr/bin/chromium"}'
//
// It writes one JSON line per step to stdout ({"step": ...}); after the steps that need the
// test to look or act ("declined", "redirected") it waits for a line on stdin. At the end it
// replays every call the page made on the Stripe.js stand-in through TypeScript, against the
// types of @stripe/stripe-js, and exits non-zero with the reason if any step failed.
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const options = JSON.parse(process.argv[2]);
const modules = process.env.COMPASS_TEST_NODE_MODULES;
if (!modules) throw new Error("COMPASS_TEST_NODE_MODULES is not set: run `eval \"$(scripts/test-services env)\"`");
const require = createRequire(path.join(modules, "node_modules", "index.js"));
const { chromium } = require("playwright-core");

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (step, fields = {}) => process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
async function go() {
  const { value, done } = await lines.next();
  if (done || value.trim() !== "next") throw new Error(`the test said ${JSON.stringify(value)}, not "next"`);
}

const calls = [];
let offline = false;
const problems = [];
// Under `faketime -f +365d scripts/test` compass, the fakes and this driver see the shifted
// date; Chromium does not start under libfaketime (its zygote and first page never answer), so
// it runs on the real clock, as a customer's own computer does.
const env = { ...process.env };
if (env.LD_PRELOAD?.includes("faketime")) delete env.LD_PRELOAD;
const browser = await chromium.launch({
  executablePath: options.chromium,
  env,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1000 } });
  page.setDefaultTimeout(20_000);
  page.on("console", (message) => {
    const text = message.text();
    if (text.startsWith("stripe-standin ")) calls.push(JSON.parse(text.slice("stripe-standin ".length)));
    // A CSP refusal, a script error: the page would be broken for a customer too.
    // Stripe's API answers a declined card 402, which Chromium logs as it would for Stripe.js;
    // and while the test cuts Stripe off, its requests fail.
    else if (message.type() === "error" && !((offline || text.includes("status of 402")) && message.location().url.startsWith(options.stripe_api))) {
      problems.push(`console error on ${page.url()}: ${text} (${message.location().url})`);
    }
  });
  page.on("pageerror", (error) => problems.push(`uncaught on ${page.url()}: ${error.message}`));
  const shot = (name) => page.screenshot({ path: path.join(options.shots, `${name}.png`), fullPage: true });
  const check = (ok, what) => { if (!ok) throw new Error(what + (problems.length ? `\n${problems.join("\n")}` : "")); };

  // The questionnaire, as a person fills it in: every visible question answered by a click.
  const opened = Date.now();
  await page.goto(options.base + "/");
  const field = (name) => page.locator(`[name="${name}"]`);
  await field("company").fill("Analytical Engines Ltd");
  await field("industry").selectOption({ index: 1 });
  await field("employees").selectOption({ index: 2 });
  await field("country").fill("United Kingdom");
  await field("name").fill("Ada Lovelace");
  await field("email").fill(options.email);
  for (let pass = 0; pass < 3; pass += 1) {
    for (const question of await page.locator(".question:visible").all()) {
      const choices = question.locator(".scale label, .choices label");
      const count = await choices.count();
      if (count > 0 && (await question.locator("input:checked").count()) === 0) {
        await choices.nth(Math.min(2, count - 1)).click();
      }
    }
  }
  await page.locator("label.tier").first().click();
  // The form refuses what is sent faster than a person types (min_form_seconds).
  await page.waitForTimeout(Math.max(0, options.min_form_ms - (Date.now() - opened)));
  await page.getByRole("button", { name: "Continue to payment" }).click();
  await page.waitForURL(/\/pay\//);
  const payUrl = page.url();
  const card = page.frameLocator("iframe[title='Secure payment input frame']");
  await card.getByLabel("Card number").waitFor();
  await shot("payment-standin");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("payment-standin-phone");
  await page.setViewportSize({ width: 1000, height: 1000 });
  say("payment", { url: payUrl });

  const pay = page.locator("#pay");
  const message = page.locator("#payment-message");
  // Pay, and wait for the page's answer: a message, and the button usable again.
  const attempt = async (what) => {
    await pay.click();
    await message.filter({ hasText: /\S/ }).waitFor();
    check(await pay.isEnabled(), `the Pay button stays disabled after ${what}`);
    return (await message.textContent()).trim();
  };

  // Each way a payment can fail, as Stripe.js reports it: the form incomplete, the network
  // gone, the card declined. Each leaves the button usable.
  const incomplete = await attempt("an incomplete card");
  await card.getByLabel("Card number").fill("4000 0000 0000 0002");
  await card.getByLabel("Expiration date").fill("12 / 34");
  await card.getByLabel("Security code").fill("123");
  offline = true;
  await page.route(`${options.stripe_api}/**`, (route) => route.abort("internetdisconnected"));
  const unreachable = await attempt("Stripe could not be reached");
  await page.unroute(`${options.stripe_api}/**`);
  offline = false;
  const declined = await attempt("a declined card");
  await shot("payment-declined");
  say("declined", { message: declined, incomplete, unreachable, url: page.url() });
  await go();

  // The same order paid with a good card; the customer clicks twice, impatiently.
  await card.getByLabel("Card number").fill("4242 4242 4242 4242");
  await pay.click();
  const second = await pay.isDisabled();
  await pay.click({ force: true, noWaitAfter: true }).catch(() => {});
  await page.waitForURL(/\/status\//, { timeout: 30_000 });
  const landed = new URL(page.url());
  await shot("status-after-redirect");
  say("redirected", {
    url: landed.href,
    disabled_while_confirming: second,
    heading: (await page.locator("h1").textContent()).trim(),
    notice: (await page.locator(".alert").allTextContents()).join(" ").trim(),
  });
  await go();

  // The status page moves on by itself (status.js) to the report, no reload by hand.
  await page.getByRole("link", { name: "Download the PDF" }).waitFor({ timeout: 90_000 });
  say("ready", { heading: (await page.locator("h1").textContent()).trim() });

  // Back on the payment page of the paid order: its status, not a second payment form.
  await page.goto(payUrl);
  say("paid-again", { url: page.url(), forms: await page.locator("#payment-form").count() });
  check(problems.length === 0, "the pages reported problems");
} catch (error) {
  say("failed", { error: String(error.stack || error), problems });
  process.exitCode = 1;
} finally {
  await browser.close();
}

// Every call the page made, replayed through TypeScript with Stripe's own types: a method
// they do not have, or an option they do not declare, is a compile error.
say("calls", { calls });
const judged = typecheck(calls);
say("types", judged);
if (!judged.ok) process.exitCode = 1;
process.exit();

function typecheck(calls) {
  const dir = mkdtempSync(path.join(tmpdir(), "compass-stripe-types-"));
  const types = path.join(modules, "node_modules", "@stripe", "stripe-js");
  const value = (v) => {
    if (v && typeof v === "object") {
      if (v.$ref) return v.$ref;
      if (v.$element) return `document.getElementById(${JSON.stringify(v.$element)})!`;
      if (v.$undefined) return "undefined";
      if (Array.isArray(v)) return `[${v.map(value).join(", ")}]`;
      return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${value(x)}`).join(", ")} }`;
    }
    return JSON.stringify(v);
  };
  const body = calls.map(({ on, method, args, made }) => {
    const call = on === "window" ? `${method}(${args.map(value).join(", ")})` : `${on}.${method}(${args.map(value).join(", ")})`;
    return made ? `const ${made} = ${call};` : `void ${call};`;
  });
  writeFileSync(path.join(dir, "calls.ts"), [
    'import type { StripeConstructor } from "@stripe/stripe-js";',
    "declare const Stripe: StripeConstructor;",
    ...body,
    "",
  ].join("\n"));
  // The stand-in itself, checked against the same types (it says `@ts-check`).
  writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, allowJs: true, checkJs: true, target: "es2022",
      module: "esnext", moduleResolution: "bundler", lib: ["es2022", "dom"],
      paths: { "@stripe/stripe-js": [types] }, types: [],
    },
    files: ["calls.ts", path.join(here, "stripe-standin.js"), path.join(here, "element.js")],
  }));
  const tsc = spawnSync(path.join(modules, "node_modules", ".bin", "tsc"), ["-p", dir], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  return { ok: tsc.status === 0 && calls.length > 0, calls: calls.length, program: body, output: (tsc.stdout + tsc.stderr).trim() };
}
