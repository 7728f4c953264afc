// Drives Debian's chromium through the gatehouse pages with Playwright and
// prints one JSON object of what it saw. The Rust test decides pass or fail.
// Usage: node console.mjs <scenario> <json config>
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';

const [scenario, raw] = process.argv.slice(2);
const config = JSON.parse(raw);
const seen = {};

/** RFC 6238 code of a base32 secret at `seconds` (the daemon's clock). */
function totp(secret, seconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return value.toString().padStart(6, '0');
}

async function signIn(page, login, password, code) {
  await page.goto(`${config.base}/login`);
  await page.getByLabel('Login or email').fill(login);
  await page.getByLabel('Password').fill(password);
  if (code) await page.getByLabel(/Code from your authenticator/).fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
}

async function shot(page, name) {
  await page.screenshot({ path: `${config.screenshots}/${name}.png`, fullPage: true });
}

/** Selects users by login on the changelist and runs `action` with `fields`. */
async function go(page, logins, action, fields = {}) {
  for (const login of logins) await page.getByLabel(`Select ${login}`).check();
  await page.getByLabel('Action', { exact: true }).selectOption(action);
  if (fields.quota) await page.getByLabel(/FTP quota/).fill(String(fields.quota));
  if (fields.project) await page.getByLabel(/Project \(for/).selectOption({ label: fields.project });
  if (fields.role) await page.getByLabel(/Role \(for/).selectOption(fields.role);
  if (fields.activate) await page.getByLabel('Also activate').check();
  await page.getByRole('button', { name: 'Go' }).click();
  await page.waitForLoadState();
  return (await page.locator('#action-results li').allInnerTexts());
}

/** The status and FTP cells of `login`'s row. */
async function row(page, login) {
  const cells = await page.locator('tr', { has: page.getByLabel(`Select ${login}`) }).locator('td').allInnerTexts();
  return { status: cells[4], ftp: cells[5] };
}

const browser = await chromium.launch({ executablePath: config.chromium, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const page = await context.newPage();
try {
  if (scenario === 'approve') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/admin`);
    seen.pendingRow = await page.locator('tr.attention').innerText();
    seen.bars = await page.locator('svg.chart rect:not([height="0"])').count();
    seen.barTitle = await page.locator('svg.chart rect:not([height="0"]) title').first().textContent();
    await shot(page, 'dashboard');
    await page.goto(`${config.base}/admin/users?status=pending`);
    seen.pendingListed = await page.locator('#changelist tbody tr').count();
    seen.approve = await go(page, [config.pending], 'set-roles', { project: config.project, role: 'editor', activate: true });
    await page.goto(`${config.base}/admin/users`);
    seen.approved = await row(page, config.pending);
    seen.ftp = await go(page, [config.uploader], 'create-ftp-accounts', { quota: 5 });
    seen.uploaderRow = await row(page, config.uploader);
    await shot(page, 'users');
    await page.getByRole('link', { name: `Open ${config.pending}` }).click();
    await page.waitForLoadState();
    await page.getByLabel('Change').selectOption('reset-token');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForLoadState();
    seen.resetLink = await page.locator('#link').innerText();
    seen.history = await page.locator('main table').last().innerText();
    await shot(page, 'user');
    await page.goto(`${config.base}/admin/audit`);
    seen.audit = await page.locator('#audit').innerText();
  } else if (scenario === 'usage') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/admin/users`);
    seen.uploaderRow = await row(page, config.uploader);
    await page.goto(`${config.base}/admin`);
    seen.meter = await page.locator('meter').first().getAttribute('value');
  } else if (scenario === 'no-admin') {
    await signIn(page, config.user, config.password);
    seen.landed = new URL(page.url()).pathname;
    await shot(page, 'account');
    const answer = await page.goto(`${config.base}/admin/users`);
    seen.adminStatus = answer.status();
    seen.adminText = await page.locator('main').innerText();
    seen.navHasUsers = await page.locator('nav').getByText('Users').count();
  } else if (scenario === 'assign') {
    await signIn(page, config.user, config.password);
    await page.goto(`${config.base}/projects`);
    await page.getByRole('link', { name: config.project }).click();
    await page.waitForLoadState();
    for (const record of config.records) await page.getByLabel(`Select ${record}`).check();
    await page.getByLabel('Member', { exact: true }).selectOption({ label: config.member });
    await page.getByRole('button', { name: 'Go' }).click();
    await page.waitForLoadState();
    seen.results = await page.locator('#action-results li').allInnerTexts();
    seen.assigned = await page.locator('td.assigned').allInnerTexts();
    await shot(page, 'project');
    await page.getByLabel(`Select ${config.handOver}`).check();
    await page.getByLabel('Member', { exact: true }).selectOption({ label: config.member });
    await page.getByLabel('Action', { exact: true }).selectOption('set-owner');
    await page.getByRole('button', { name: 'Go' }).click();
    await page.waitForLoadState();
    seen.handedOver = await page.locator('#action-results li').allInnerTexts();
    seen.owners = await page.locator('td.owner').allInnerTexts();
  } else if (scenario === 'directory') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/admin/groups`);
    await page.getByLabel('New group').fill('field-team');
    await page.getByRole('button', { name: 'Add group' }).click();
    await page.waitForLoadState();
    seen.groupAdded = await page.locator('#action-results').innerText();
    seen.groups = await page.locator('#group-list').innerText();
    await page.getByLabel('New organization code').fill('DOC');
    await page.getByRole('button', { name: 'Add organization' }).click();
    await page.waitForLoadState();
    seen.organizations = await page.locator('#organization-list').innerText();
    await page.getByRole('button', { name: `Delete organization ${config.doomed}` }).click();
    await page.waitForLoadState();
    seen.plan = await page.locator('#deletion-plan').innerText();
    await shot(page, 'groups');
    await page.getByRole('button', { name: `Delete ${config.doomed} for good` }).click();
    await page.waitForLoadState();
    seen.deleted = await page.locator('#action-results').innerText();
    seen.organizationsAfter = await page.locator('#organization-list').innerText();
  } else if (scenario === 'thumbnails') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/projects`);
    await page.getByRole('link', { name: config.project }).click();
    await page.waitForLoadState();
    await page.getByRole('button', { name: 'Make missing thumbnails' }).click();
    await page.waitForLoadState();
    // htmx replaces the progress until the job says it has finished.
    await page.locator('#job', { hasText: 'finished' }).waitFor({ timeout: 20000 });
    seen.job = await page.locator('#job').innerText();
    await page.reload();
    seen.thumbnails = await page.locator('#records-table td:last-child').allInnerTexts();
  } else if (scenario === 'changelist') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/admin/users`);
    await page.getByLabel('Organization', { exact: true }).selectOption({ label: config.organization });
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForLoadState();
    seen.inOrganization = await page.locator('#changelist tbody tr').count();
    const exportUrl = await page.getByRole('link', { name: 'Export these users as CSV' }).getAttribute('href');
    const csv = await page.request.get(`${config.base}${exportUrl}`);
    seen.exportStatus = csv.status();
    seen.exportHasMember = (await csv.text()).includes(config.member);
    await page.getByLabel(`Select ${config.member}`).check();
    await page.getByLabel('Action', { exact: true }).selectOption('add-to-groups');
    await page.getByLabel('Groups (comma-separated)').fill('rangers, volunteers');
    await page.getByRole('button', { name: 'Go' }).click();
    await page.waitForLoadState();
    seen.grouped = await page.locator('#action-results li').allInnerTexts();
    await page.getByLabel(`Select ${config.member}`).check();
    await page.getByLabel('Action', { exact: true }).selectOption('set-system-roles');
    await page.getByLabel('auditor').check();
    await page.getByRole('button', { name: 'Go' }).click();
    await page.waitForLoadState();
    seen.roles = await page.locator('#action-results li').allInnerTexts();
    await page.getByRole('link', { name: 'Import users from CSV' }).click();
    await page.waitForLoadState();
    await page.getByLabel('CSV (paste the file\'s contents)').fill(config.csv);
    await page.getByRole('button', { name: 'Check' }).click();
    await page.waitForLoadState();
    seen.plan = await page.locator('#plan li').allInnerTexts();
    await shot(page, 'import');
    await page.getByRole('button', { name: 'Apply this plan' }).click();
    await page.waitForLoadState();
    seen.applied = await page.locator('.notice').innerText();
  } else if (scenario === 'edit-user') {
    await signIn(page, config.admin, config.password);
    await page.goto(`${config.base}/admin/users/${config.id}`);
    await page.getByLabel('Last name').fill('Whero');
    await page.getByLabel('May sign in until (date, UTC)').fill('2027-03-31');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.waitForLoadState();
    seen.profile = await page.locator('[role=status], [role=alert]').first().innerText();
    await page.getByLabel('user_manager').check();
    await page.getByRole('button', { name: 'Save roles' }).click();
    await page.waitForLoadState();
    await page.getByLabel('Organization', { exact: true }).selectOption({ label: config.organization });
    await page.getByRole('button', { name: 'Save organization' }).click();
    await page.waitForLoadState();
    await page.getByLabel('Add to group').selectOption(config.group);
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.waitForLoadState();
    seen.groups = await page.locator('#user-groups').innerText();
    await shot(page, 'user-edit');
  } else if (scenario === 'totp-enrol') {
    await signIn(page, config.user, config.password);
    await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
    await page.waitForLoadState();
    seen.qr = await page.locator('.qr svg').count();
    await shot(page, 'totp');
    seen.secret = await page.locator('#totp-secret').innerText();
    await page.getByLabel('Code', { exact: true }).fill(totp(seen.secret, config.now));
    await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
    await page.waitForLoadState();
    seen.notice = await page.locator('.notice').innerText();
    seen.session = (await context.cookies()).find((c) => c.name.endsWith('gh_session'))?.value;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForLoadState();
    seen.afterSignOut = new URL(page.url()).pathname;
    await page.goto(`${config.base}/account`);
    seen.accountAfterSignOut = new URL(page.url()).pathname;
  } else if (scenario === 'totp-signin') {
    await signIn(page, config.user, config.password);
    seen.withoutCode = await page.locator('.error').innerText();
    await signIn(page, config.user, config.password, totp(config.secret, config.now));
    seen.withCode = new URL(page.url()).pathname;
    seen.state = await page.locator('#two-factor-state').innerText();
  }
} catch (error) {
  seen.error = String(error);
  await shot(page, `failure-${scenario}`).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
