// A customer's day in the console, in one language, as a marketer works
// in Chromium: a mailbox, a list and its addresses, a template with a link
// and an attachment (previewed live, sent as a test), a task watched until
// it finishes, the bounced address found among the suppressions and lifted,
// the credits in the ledger. Run by tests/console_browser.rs, which sets
// up the customer and its domain and passes, in the environment, where
// things are (QUNFA_E2E_APP, _MODULES, _CHROMIUM, _SHOTS, _SHOT_PREFIX,
// _README_SHOT) and the day's data (_USER, _PASSWORD, _LANG, _DOMAIN,
// _TEST_TO, _BOUNCE, _PEOPLE). A screenshot of each page goes to _SHOTS.
// Exits non-zero on the first failed check or on any JavaScript error.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

const env = (name) => {
  const v = process.env[`QUNFA_E2E_${name}`];
  if (v === undefined) throw new Error(`QUNFA_E2E_${name} is not set`);
  return v;
};
const require = createRequire(join(env("MODULES"), "noop.js"));
const { chromium } = require("playwright-core");

const app = env("APP");
const lang = env("LANG");
const domain = env("DOMAIN");
const shots = env("SHOTS");
const prefix = env("SHOT_PREFIX");
const readmeShot = process.env.QUNFA_E2E_README_SHOT || "";
const bless = process.env.QUNFA_BLESS === "1";
const [bounce, testTo] = [env("BOUNCE"), env("TEST_TO")];
// The people of the list: "address;name", the first one edited later.
const people = env("PEOPLE").split(",").map((p) => p.split(";"));

// What the pages say after a form, in the language of the run.
const WORDS = {
  en: {
    added: "Added.",
    saved: "Saved.",
    sentTest: "The test message was sent.",
    lifted: "The suppression was lifted.",
    tooLong: "A list's name is at most 100 characters.",
    bounced: "Hard bounce: Mailbox does not exist",
    done: "Completed",
    corrected: (name) => `${name}-Wu`,
  },
  zh: {
    added: "已添加",
    saved: "已保存",
    sentTest: "测试邮件已发出",
    lifted: "已解除屏蔽",
    tooLong: "分类名称最多 100 个字符",
    bounced: "硬退信: 邮箱不存在",
    done: "发送完成",
    corrected: (name) => `${name}总`,
  },
}[lang];

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${lang}: ${what}`);
}
function equal(actual, expected, what) {
  check(
    JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: ${JSON.stringify(actual)} (expected ${JSON.stringify(expected)})`,
  );
}
const text = async (page, selector) => (await page.locator(selector).innerText()).trim();
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${prefix}-${name}.png`), fullPage: true });
}
// Every page: in the run's language, every control labelled.
async function labelled(page) {
  equal(await page.getAttribute("html", "lang"), lang === "zh" ? "zh-CN" : "en", `${page.url()}: language`);
  const unlabelled = await page.$$eval("input:not([type=hidden]), select, textarea", (els) =>
    els
      .filter((e) => !e.hidden && !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  equal(unlabelled, [], `${page.url()}: every field has a label`);
  const empty = await page.$$eval("nav a, h1, h2, button, label, th:not(:last-child)", (els) =>
    els
      .filter((e) => e.checkVisibility() && e.innerText.trim() === "" && !e.querySelector(".sr-only"))
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  equal(empty, [], `${page.url()}: no empty label`);
}
async function submit(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}
async function flash(page) {
  return text(page, "main > p.flash");
}

const browser = await chromium.launch({ executablePath: env("CHROMIUM"), headless: true, args: ["--no-sandbox"] });
const errors = [];
let failed = false;
try {
  const context = await browser.newContext({
    locale: lang === "zh" ? "zh-CN" : "en-US",
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${page.url()}: console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e}`));
  page.on("requestfailed", (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));

  // Log in, in the browser's language.
  await page.goto(`${app}/sendstat/`);
  await page.fill("input[name=username]", env("USER"));
  await page.fill("input[name=password]", env("PASSWORD"));
  await submit(page, "form.login button[type=submit]");
  equal(page.url(), `${app}/sendstat/`, "logged in");
  await labelled(page);
  await page.keyboard.press("Tab");
  equal(await page.evaluate(() => document.activeElement.className), "skip", "the first Tab reaches the skip link");

  // 1. A mailbox of the customer's domain; its password is not shown again.
  await page.goto(`${app}/sendstat/domains`);
  await page.fill("#f-local_part", "news");
  await page.selectOption("#f-domain", domain);
  await page.fill("#f-password", "mailbox-Secret-1");
  await submit(page, "#add-mailbox button[type=submit]");
  equal(await flash(page), WORDS.added, "the mailbox is added");
  check((await page.content()).includes(`news@${domain}`), "the mailbox is listed");
  check(!(await page.content()).includes("mailbox-Secret-1"), "its password is not shown");
  check((await page.locator(`section[data-domain="${domain}"] .records tr`).count()) >= 2, "the records to publish");
  await labelled(page);
  await shot(page, "domains");

  // 2. A list: a name too long is refused next to its field, in this language.
  await page.goto(`${app}/sendstat/lists`);
  await page.fill("#f-name", "名".repeat(101));
  await submit(page, "#new-list button[type=submit]");
  equal(await text(page, "#e-name"), WORDS.tooLong, "a long name is refused beside the field");
  equal(await page.getAttribute("#f-name", "aria-invalid"), "true", "the field is marked");
  await page.fill("#f-name", "Customers");
  await submit(page, "#new-list button[type=submit]");
  await Promise.all([page.waitForNavigation(), page.click("#lists a >> text=Customers")]);
  const listUrl = page.url();
  // Addresses typed from the keyboard: Tab to the next field, Enter sends.
  for (const [address, name] of people) {
    await page.focus("#add-address #f-email");
    await page.keyboard.type(address);
    await page.keyboard.press("Tab");
    await page.keyboard.type(name);
    if (address === people[0][0]) {
      await page.keyboard.press("Tab");
      await page.keyboard.press("Enter"); // opens the variables
      await page.keyboard.press("Tab");
      await page.keyboard.type("VIP");
    }
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    equal(await flash(page), WORDS.added, `${address} is added from the keyboard`);
  }
  equal((await page.locator("#addresses tr[data-address]").count()), people.length, "the list's addresses");
  // Correct the first one's name.
  const [first] = people[0];
  await Promise.all([
    page.waitForNavigation(),
    page.click(`#addresses tr:has(td.email:text-is("${first}")) a`),
  ]);
  await labelled(page);
  await shot(page, "address");
  const corrected = WORDS.corrected(people[0][1]);
  await page.fill("#f-fullname", corrected);
  await submit(page, "#edit-address button[type=submit]");
  equal(await flash(page), WORDS.saved, "the address is saved");
  equal(
    await text(page, `#addresses tr:has(td.email:text-is("${first}")) .fullname`),
    corrected,
    "the corrected name is listed",
  );
  await labelled(page);
  await shot(page, "list");

  // 3. A template with a link and an attachment, previewed as it is typed.
  await page.goto(`${app}/sendstat/templates`);
  await submit(page, "#new-template");
  await page.fill("#f-name", "Autumn sale");
  await page.fill("#f-subject", "{{ fullname }}, the autumn sale");
  await page.fill("#f-html", '<h1>Hello {{ fullname }}</h1>\n<p><a href="https://shop.example/autumn">See the sale</a></p>');
  await page.fill("#f-text", "Hello {{ fullname }}: https://shop.example/autumn");
  await page.setInputFiles("#f-files", {
    name: "prices.pdf",
    mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n% the autumn prices\n"),
  });
  await submit(page, "#save");
  check(/\/sendstat\/templates\/\d+\?ok=created$/.test(page.url()), `the template is saved (${page.url()})`);
  const frame = page.frameLocator("#preview");
  equal(await frame.locator("a").getAttribute("href"), "https://shop.example/autumn", "the preview shows the link");
  equal(await text(page, "#preview-subject"), `${corrected}, the autumn sale`, "the preview's subject is rendered");
  check((await page.locator("#attachment-list").innerText()).includes("prices.pdf"), "the attachment is listed");
  // Live: the preview follows the editor.
  const before = await page.getAttribute("#editor", "data-previewed");
  await page.fill("#f-html", '<h1>Dear {{ fullname }}</h1>\n<p><a href="https://shop.example/autumn">See the sale</a></p>');
  await page.waitForFunction((b) => document.getElementById("editor").getAttribute("data-previewed") !== b, before);
  equal(await frame.locator("h1").innerText(), `Dear ${corrected}`, "the preview follows what is typed");
  await submit(page, "#save");
  equal(await flash(page), WORDS.saved, "the change is saved");
  await labelled(page);
  await shot(page, "template");
  if (readmeShot && (bless || !(await import("node:fs")).existsSync(readmeShot))) {
    mkdirSync(dirname(readmeShot), { recursive: true });
    await page.screenshot({ path: readmeShot, fullPage: false });
    console.log(`wrote ${readmeShot}`);
  }
  const templateUrl = page.url().replace(/\?.*$/, "");

  // 4. A test to one address.
  await page.fill("#test-form #f-to", testTo);
  await page.selectOption("#test-form #f-sender", `news@${domain}`);
  await submit(page, "#test-form button[type=submit]");
  equal(await flash(page), WORDS.sentTest, "the test is sent");

  // 5. A task from the console, watched until it finishes.
  await page.goto(`${app}/sendstat/tasks`);
  await page.selectOption("#f-template", { label: "Autumn sale" });
  await page.selectOption("#f-list", { label: `Customers (${people.length})` });
  await page.selectOption("#f-sender", `news@${domain}`);
  await page.selectOption("#f-when", "now");
  await page.selectOption("#f-tracking", "all");
  await submit(page, "#new-task button[type=submit]");
  const taskLink = page.locator("#tasks tr[data-task-row] a").first();
  const taskPath = await taskLink.getAttribute("href");
  await Promise.all([page.waitForNavigation(), taskLink.click()]);
  // The page's script follows the task until it is done.
  await page.locator('#task-status[data-status="3"]').waitFor({ timeout: 60_000 });
  equal(await text(page, "#task-status"), WORDS.done, "the task finishes");
  // The failed addresses are in the report once it is read again.
  await page.reload();
  equal(await text(page, "#task-sent"), String(people.length - 1), "all but the bounced one delivered");
  equal(await text(page, "#task-failed"), "1", "one failed");
  check((await page.locator("#failed td.email", { hasText: bounce }).count()) === 1, "the failed address is listed");
  await labelled(page);
  await shot(page, "task");

  // 6. The bounced address among the suppressions, lifted with a note.
  await page.goto(`${app}/sendstat/suppressions`);
  await page.fill("#filter #f-q", bounce.split("@")[0]);
  await submit(page, "#filter button[type=submit]");
  const row = page.locator(`#suppressions tr[data-email="${bounce}"]`);
  equal(await row.locator(".reason").innerText(), WORDS.bounced, "it bounced as not existing");
  await labelled(page);
  await shot(page, "suppressions");
  await Promise.all([page.waitForNavigation(), row.locator("a").click()]);
  equal(await page.inputValue("#lift #f-email"), bounce, "the lift form names it");
  await page.fill("#f-note", "The customer called: the mailbox exists again.");
  await submit(page, "#lift button[type=submit]");
  equal(await flash(page), WORDS.lifted, "the suppression is lifted");
  equal(await page.locator(`#suppressions tr[data-email="${bounce}"]`).count(), 0, "it is gone");

  // 7. The credits the task spent, each movement with its task.
  await page.goto(`${app}/sendstat/account`);
  const held = page.locator('#ledger tr[data-kind="ledger_pre_deduct"]').first();
  equal(await held.locator(".amount").innerText(), String(-people.length), "the task held a credit per address");
  equal(await held.locator(".task a").getAttribute("href"), taskPath, "with its task");
  const back = page.locator('#ledger tr[data-kind="ledger_refund"]').first();
  equal(await back.locator(".amount").innerText(), "1", "the bounced one's credit came back");
  equal(await back.locator(".task a").getAttribute("href"), taskPath, "with its task");
  console.log(`# credits left: ${await text(page, "#credits")}`);
  await labelled(page);
  await shot(page, "account");

  // Back to the template: still there, with its test and attachment.
  await page.goto(templateUrl);
  await labelled(page);

  // Without JavaScript the editor still previews, by its button.
  const plain = await browser.newContext({ javaScriptEnabled: false, locale: lang === "zh" ? "zh-CN" : "en-US" });
  const noJs = await plain.newPage();
  await noJs.goto(`${app}/sendstat/`);
  await noJs.fill("input[name=username]", env("USER"));
  await noJs.fill("input[name=password]", env("PASSWORD"));
  await submit(noJs, "form.login button[type=submit]");
  await noJs.goto(templateUrl);
  await noJs.fill("#f-html", "<h1>Without a script, {{ fullname }}</h1>");
  await submit(noJs, "#preview-button");
  equal(
    await noJs.frameLocator("#preview").locator("h1").innerText(),
    `Without a script, ${corrected}`,
    "without JavaScript the Preview button renders what was typed",
  );
  await noJs.goto(templateUrl);
  equal(await noJs.frameLocator("#preview").locator("h1").innerText(), `Dear ${corrected}`, "a preview saves nothing");
  await plain.close();

  equal(errors, [], "console and page errors");
} catch (e) {
  failed = true;
  console.error(String(e?.stack || e));
  if (errors.length) console.error(`errors seen:\n${errors.join("\n")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
