// The console in Chromium, as a customer uses it. Run by
// tests/console_browser.rs, which prepares the data and passes, in the
// environment, where things are (QUNFA_E2E_APP, _SHOP, _MODULES, _CHROMIUM,
// _SHOTS, _README_SHOT) and what the pages must show (_USER, _PASSWORD,
// _MANAGER, _MANAGER_PASSWORD, _CREDITS, _SENT, _FAILED, _TASK, _LIST,
// _IMPORT_LIST).
// Exits non-zero on the first failed check or on any JavaScript error.
import { createRequire } from "node:module";
import { mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";

const env = (name) => {
  const v = process.env[`QUNFA_E2E_${name}`];
  if (v === undefined) throw new Error(`QUNFA_E2E_${name} is not set`);
  return v;
};
const require = createRequire(join(env("MODULES"), "noop.js"));
const { chromium } = require("playwright-core");

const app = env("APP");
const shop = env("SHOP");
const shots = env("SHOTS");
const readmeShot = env("README_SHOT");
const bless = process.env.QUNFA_BLESS === "1";

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}
function equal(actual, expected, what) {
  check(
    JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: ${JSON.stringify(actual)} (expected ${JSON.stringify(expected)})`,
  );
}
const text = async (page, selector) => (await page.locator(selector).innerText()).trim();
// A table's data rows (the header row has no td), as arrays of cell texts.
const rows = (page, table) =>
  page.$$eval(`${table} tr`, (trs) =>
    trs
      .map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim()))
      .filter((cells) => cells.length > 0),
  );
async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// Every page's labels come from the language's strings: none may be empty
// (a table's last header may: it heads the actions).
async function labelled(page, lang) {
  equal(await page.getAttribute("html", "lang"), lang === "zh" ? "zh-CN" : "en", `${page.url()}: language`);
  const empty = await page.$$eval("nav a, h1, h2, button, label, figcaption, th:not(:last-child)", (els) =>
    // What is not shown (a closed <details>) has no text to check.
    els.filter((e) => e.checkVisibility() && e.innerText.trim() === "").map((e) => e.outerHTML.slice(0, 80)),
  );
  equal(empty, [], `${page.url()}: no empty label`);
}
// Each page of `paths` answers 200 in both languages, fully labelled.
async function everyPage(page, paths) {
  for (const lang of ["en", "zh"]) {
    for (const path of paths) {
      const r = await page.goto(`${app}${path}${path.includes("?") ? "&" : "?"}lang=${lang}`);
      equal(r.status(), 200, `${path} in ${lang}`);
      await labelled(page, lang);
    }
  }
}

const shopHost = new URL(shop).hostname;
const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  // The customer's site has a name of its own, so the login form really
  // posts across sites; it resolves to this machine.
  args: ["--no-sandbox", `--host-resolver-rules=MAP ${shopHost} 127.0.0.1`],
});
const errors = [];
let failed = false;
try {
  const context = await browser.newContext({
    locale: "zh-CN",
    viewport: { width: 1280, height: 860 },
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${page.url()}: console: ${m.text()} (${m.location()?.url})`);
  });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e}`));
  page.on("requestfailed", (r) => {
    // The progress poll still in flight when the script goes to the next
    // page is cancelled by the browser (ERR_ABORTED): not a failure of the
    // page. A server that fails answers otherwise (reset, empty reply).
    if (r.resourceType() === "fetch" && r.failure()?.errorText === "net::ERR_ABORTED") return;
    errors.push(`${r.url()}: ${r.failure()?.errorText}`);
  });

  // 1. The 8.1 login from the customer's own page on another site.
  const submit = async (password, errurl) => {
    await page.goto(`${shop}/login.html`);
    await page.fill("input[name=username]", env("USER"));
    await page.fill("input[name=password]", password);
    if (errurl) await page.locator("input[name=errurl]").evaluate((e, v) => (e.value = v), errurl);
    await Promise.all([page.waitForNavigation(), page.click("input[name=Submit]")]);
  };
  await submit("wrong-password");
  equal(page.url(), `${shop}/login-error.html`, "a wrong password lands on errurl");
  check(await page.locator("#shop-error").isVisible(), "the customer's error page shows");

  await submit("wrong-password", "http://evil.example/phish.html");
  check(page.url().startsWith(`${app}/sendstat/`), `a foreign errurl is not followed (${page.url()})`);
  check(await page.locator("#login-error").isVisible(), "the console's own login page shows the error");
  await shot(page, "login-error");

  await submit(env("PASSWORD"));
  equal(page.url(), `${app}/sendstat/`, "the right password lands on the dashboard");

  // The dashboard: the customer's figures and three charts of them.
  equal(await text(page, "#username"), env("USER"), "#username");
  equal(await text(page, "#credits"), env("CREDITS"), "#credits");
  equal(await text(page, "#sent-30"), env("SENT"), "#sent-30");
  equal(await text(page, "#failed-30"), env("FAILED"), "#failed-30");
  equal(await page.locator("#chart-sends svg.chart polyline.series").count(), 2, "sends chart lines");
  equal(await page.locator("#chart-tracking svg.chart polyline.series").count(), 3, "tracking chart lines");
  check((await page.locator("#chart-failures svg.chart rect.bar").count()) >= 1, "failures chart has bars");
  // Today's point of each line series stands above its first (empty) day.
  for (const chart of ["#chart-sends", "#chart-tracking"]) {
    const risen = await page.$$eval(`${chart} polyline.series`, (lines) =>
      lines.map((l) => {
        const ys = l.getAttribute("points").trim().split(/\s+/).map((p) => Number(p.split(",")[1]));
        return ys[ys.length - 1] < ys[0];
      }),
    );
    check(risen[0], `${chart}: today's first series is drawn above zero`);
  }
  const drawn = await page.locator("#chart-sends svg.chart").boundingBox();
  check(drawn && drawn.width > 200 && drawn.height > 50, "the charts have a size on screen");
  await shot(page, "dashboard-zh");

  // 2. The task list and the report.
  await page.goto(`${app}/sendstat/tasks`);
  check((await page.locator(`#tasks a[href="/sendstat/tasks/${env("TASK")}"]`).count()) >= 1, "the task is listed");
  check(await page.locator("#new-task").isVisible(), "the new-task form shows");
  await shot(page, "tasks");
  await page.click(`#tasks a[href="/sendstat/tasks/${env("TASK")}"]`);
  await page.waitForURL(`${app}/sendstat/tasks/${env("TASK")}`);
  equal(
    await rows(page, "#links"),
    [
      ["https://shop.example/sale", "2", "3"],
      ["https://shop.example/new", "1", "1"],
    ],
    "clicks per link",
  );
  const failures = await rows(page, "#failures");
  equal(
    failures.map((r) => r[1]),
    ["1", "1", "0", "0", "0"],
    "failures by class (not found, mailbox full, …)",
  );
  const providers = Object.fromEntries((await rows(page, "#providers")).map((r) => [r[0], r.slice(1)]));
  equal(providers["QQ"], ["2", "1", "1"], "QQ: recipients, delivered, failed");
  equal(providers["163/126"], ["2", "1", "1"], "163/126");
  equal(providers["Gmail"], ["1", "1", "0"], "Gmail");
  equal(providers["Outlook"], ["1", "1", "0"], "Outlook");
  equal(providers["others"], ["1", "1", "0"], "others");
  const notFound = await page.request.get(`${app}/sendstat/tasks/${env("TASK")}/failures.txt?class=1`);
  check((await notFound.text()).includes("gone@qq.com"), "the failures export names the unknown mailbox");
  await shot(page, "task");

  // 3. Lists: browse one, import a file into another and watch its progress.
  await page.goto(`${app}/sendstat/lists`);
  check((await page.locator("#lists").count()) === 1, "the lists page shows its table");
  await shot(page, "lists");
  await page.goto(`${app}/sendstat/lists/${env("LIST")}`);
  equal((await rows(page, "#addresses")).length, 7, "the list's addresses");
  await page.goto(`${app}/sendstat/lists/${env("LIST")}?q=qq.com`);
  equal((await rows(page, "#addresses")).map((r) => r[1]).sort(), ["gone@qq.com", "wang@qq.com"], "search");

  await page.goto(`${app}/sendstat/lists/${env("IMPORT_LIST")}`);
  const file = ["zhou@qq.com;周杰", "wu@163.com;吴磊", "zheng@gmail.com;郑爽", "feng@dest.cn;冯巩", "not an address"];
  await page.setInputFiles("#import input[type=file]", {
    name: "新客户.txt",
    mimeType: "text/plain",
    buffer: Buffer.from(file.join("\n") + "\n"),
  });
  const [uploaded] = await Promise.all([page.waitForNavigation(), page.click("#import button[type=submit]")]);
  const rendered = (await uploaded.text()).match(/data-state="(\w+)"/)?.[1];
  console.log(`# the import's row was rendered as "${rendered}"; the page's script polls it to "done"`);
  const job = page.locator("#imports tr[data-import]").last();
  await job.locator('.state[data-state="done"]').waitFor({ timeout: 30_000 });
  equal(await text(page, "#imports tr[data-import] >> nth=-1 >> .added"), "4", "the import's added count");
  equal(await text(page, "#imports tr[data-import] >> nth=-1 >> .invalid"), "1", "the import's invalid count");
  equal(
    await job.locator("progress").evaluate((p) => p.value === p.max),
    true,
    "the import's progress bar is full",
  );
  await shot(page, "list-import");
  await page.goto(`${app}/sendstat/lists/${env("IMPORT_LIST")}`);
  equal((await rows(page, "#addresses")).length, 4, "the imported addresses are listed");

  // Templates and domains.
  await page.goto(`${app}/sendstat/templates`);
  await shot(page, "templates");
  await page.goto(`${app}/sendstat/templates/1`);
  equal(await text(page, "#preview-subject"), "王伟，您好", "the preview is rendered for the customer's first address");
  await shot(page, "template");
  await page.goto(`${app}/sendstat/domains`);
  check((await page.content()).includes("acme.cn"), "the customer's domain is listed");
  await shot(page, "domains");

  // Every customer page in both languages (the switch is checked below).
  const task = env("TASK");
  await everyPage(page, [
    "/sendstat/",
    "/sendstat/tasks",
    `/sendstat/tasks/${task}`,
    "/sendstat/lists",
    `/sendstat/lists/${env("LIST")}`,
    "/sendstat/templates",
    "/sendstat/templates/1",
    "/sendstat/domains",
  ]);
  await page.goto(`${app}/sendstat/?lang=zh`);

  // 4. The language switch, remembered from page to page.
  await page.goto(`${app}/sendstat/`);
  equal(await page.getAttribute("html", "lang"), "zh-CN", "Chinese by the browser's language");
  equal(await text(page, "header nav a >> nth=0"), "概览", "the Chinese label");
  await Promise.all([page.waitForNavigation(), page.click("#lang-switch")]);
  equal(await page.getAttribute("html", "lang"), "en", "English after the switch");
  equal(await text(page, "header nav a >> nth=0"), "Dashboard", "the English label");
  await page.goto(`${app}/sendstat/tasks`);
  equal(await text(page, "header nav a >> nth=1"), "Tasks", "English is remembered");
  await page.goto(`${app}/sendstat/`);
  await shot(page, "dashboard-en");
  if (bless || !existsSync(readmeShot)) {
    mkdirSync(dirname(readmeShot), { recursive: true });
    await page.screenshot({ path: readmeShot, fullPage: true });
    console.log(`wrote ${readmeShot}`);
  }
  await Promise.all([page.waitForNavigation(), page.click("#lang-switch")]);
  equal(await text(page, "header nav a >> nth=0"), "概览", "back to Chinese");

  // Logging out ends the session.
  await Promise.all([page.waitForNavigation(), page.click("header form button")]);
  await page.goto(`${app}/sendstat/tasks`);
  check(await page.locator("input[name=password]").isVisible(), "after logout the console asks for a login");

  // The built-in login page: a customer's credentials are no manager's.
  const login = async (user, password, type) => {
    await page.goto(`${app}/sendstat/`);
    await page.fill("input[name=username]", user);
    await page.fill("input[name=password]", password);
    await page.selectOption("select[name=user_type]", type);
    await Promise.all([page.waitForNavigation(), page.click("form.login button[type=submit]")]);
  };
  await login(env("USER"), env("PASSWORD"), "manager");
  check(await page.locator("#login-error").isVisible(), "a customer's password does not log in a manager");
  // The manager's console: every customer, every domain.
  await login(env("MANAGER"), env("MANAGER_PASSWORD"), "manager");
  equal(page.url(), `${app}/sendstat/`, "the manager lands on its home");
  const customers = await rows(page, "#customers");
  const acme = customers.find((r) => r[1] === env("USER"));
  check(acme !== undefined, "the manager sees the customer");
  equal(await page.locator("#customers tr", { hasText: env("USER") }).locator(".credits").innerText(), env("CREDITS"), "its credits");
  equal(await page.locator("#customers tr", { hasText: env("USER") }).locator(".sent").innerText(), env("SENT"), "its sending");
  await shot(page, "manager-customers");
  await page.goto(`${app}/sendstat/domains`);
  check((await page.content()).includes("acme.cn"), "the manager sees every domain");
  await everyPage(page, ["/sendstat/", "/sendstat/domains"]);

  // 5. No JavaScript error anywhere.
  equal(errors, [], "console and page errors");
} catch (e) {
  failed = true;
  console.error(String(e?.stack || e));
  if (errors.length) console.error(`errors seen:\n${errors.join("\n")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
