// The official Node SDK (`permitio` from npm), unchanged, against the local Permit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Permit } from 'permitio';
import { startLocalPermit } from './local-permit.mjs';

let local;
let permit;

before(async () => {
  local = await startLocalPermit();
  permit = new Permit({
    token: local.apiKey,
    pdp: local.pdpUrl,
    apiUrl: local.apiUrl,
    throwOnError: true,
    log: { level: 'silent' },
  });
});

after(async () => {
  await local?.stop();
});

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

async function blogSchema(post, viewer, editor) {
  const resource = await permit.api.resources.create({
    key: post,
    name: 'Post',
    actions: { read: {}, update: {}, delete: {} },
  });
  assert.deepEqual(Object.keys(resource.actions).sort(), ['delete', 'read', 'update']);
  await permit.api.roles.create({ key: viewer, name: 'Viewer', permissions: [`${post}:read`] });
  const role = await permit.api.roles.create({
    key: editor,
    name: 'Editor',
    permissions: [`${post}:update`],
    extends: [viewer],
  });
  assert.deepEqual(role.extends, [viewer]);
}

test('seed flow: sync a user, create a tenant, assign, check, unassign', async () => {
  const [post, viewer, editor] = [unique('post'), unique('viewer'), unique('editor')];
  await blogSchema(post, viewer, editor);

  // An e-mail key: the SDK percent-encodes it in the path (jane%40example.com).
  const email = `${unique('jane')}@example.com`;
  const first = await permit.api.users.sync({ key: email, email, first_name: 'Jane' });
  assert.equal(first.created, true);
  assert.equal(first.user.key, email);
  const second = await permit.api.users.sync({ key: email, email, first_name: 'Janet' });
  assert.equal(second.created, false);
  assert.equal(second.user.id, first.user.id);
  assert.equal((await permit.api.users.get(email)).first_name, 'Janet');

  const tenantKey = unique('acme');
  const tenant = await permit.api.tenants.create({ key: tenantKey, name: 'Acme' });
  assert.equal(tenant.key, tenantKey);

  const assignment = await permit.api.users.assignRole({ user: email, role: viewer, tenant: tenantKey });
  assert.equal(assignment.role, viewer);
  assert.equal(assignment.tenant, tenantKey);

  assert.equal(await permit.check(email, 'read', { type: post, tenant: tenantKey }), true);
  assert.equal(await permit.check(email, 'update', { type: post, tenant: tenantKey }), false);
  assert.equal(await permit.check(email, 'read', { type: post, tenant: 'default' }), false);

  await permit.api.roleAssignments.assign({ user: email, role: editor, tenant: 'default' });
  assert.equal(await permit.check(email, 'read', post), true, 'editor extends viewer');
  assert.equal(await permit.check(email, 'update', post), true);

  await permit.api.users.unassignRole({ user: email, role: viewer, tenant: tenantKey });
  assert.equal(await permit.check(email, 'read', { type: post, tenant: tenantKey }), false);

  await assert.rejects(
    permit.api.users.unassignRole({ user: email, role: viewer, tenant: tenantKey }),
    (err) => err.response?.status === 404,
  );
});

test('errors: 409 on duplicate create, 404 on missing', async () => {
  const key = unique('dup');
  await permit.api.users.create({ key });
  await assert.rejects(permit.api.users.create({ key }), (err) => err.response?.status === 409);
  await assert.rejects(permit.api.users.get(unique('missing')), (err) => err.response?.status === 404);
  await assert.rejects(
    permit.api.tenants.create({ key: 'has.dots', name: 'x' }),
    (err) => err.response?.status === 422,
  );
});

test('bulk operations', async () => {
  const [post, viewer, editor] = [unique('post'), unique('viewer'), unique('editor')];
  await blogSchema(post, viewer, editor);
  const prefix = unique('bulk');
  const users = Array.from({ length: 250 }, (_, i) => ({ key: `${prefix}-${i}`, email: `${prefix}-${i}@example.com` }));
  await permit.api.users.bulkUserReplace(users);
  await permit.api.users.bulkUserReplace(users);
  const tenants = [0, 1].map((i) => ({ key: `${prefix}-t${i}`, name: `T${i}` }));
  for (const t of tenants) await permit.api.tenants.create(t);

  const assignments = users.map((u) => ({ user: u.key, role: viewer, tenant: tenants[0].key }));
  const report = await permit.api.roleAssignments.bulkAssign(assignments);
  assert.equal(report.assignments_created, 250);

  const decisions = await permit.bulkCheck([
    { user: users[0].key, action: 'read', resource: { type: post, tenant: tenants[0].key } },
    { user: users[1].key, action: 'update', resource: { type: post, tenant: tenants[0].key } },
    { user: users[2].key, action: 'read', resource: { type: post, tenant: tenants[1].key } },
  ]);
  assert.deepEqual(decisions, [true, false, false]);

  const removed = await permit.api.roleAssignments.bulkUnassign(assignments.slice(0, 50));
  assert.equal(removed.assignments_removed, 50);
  assert.equal(await permit.check(users[0].key, 'read', { type: post, tenant: tenants[0].key }), false);
  assert.equal(await permit.check(users[60].key, 'read', { type: post, tenant: tenants[0].key }), true);

  await permit.api.users.bulkUserDelete(users.slice(0, 100).map((u) => u.key));
  await assert.rejects(permit.api.users.get(users[0].key), (err) => err.response?.status === 404);
  const created = await permit.api.users.bulkUserCreate([{ key: unique('bc') }, { key: unique('bc') }]);
  assert.ok(created !== undefined);
});

test('listing with pagination', async () => {
  const prefix = unique('page');
  await permit.api.users.bulkUserCreate(Array.from({ length: 230 }, (_, i) => ({ key: `${prefix}-${String(i).padStart(3, '0')}` })));
  const first = await permit.api.users.list({ page: 1, perPage: 100 });
  const total = first.total_count;
  assert.ok(total >= 230);
  assert.equal(first.page_count, Math.ceil(total / 100));
  const seen = new Set();
  for (let page = 1; page <= first.page_count; page++) {
    const result = await permit.api.users.list({ page, perPage: 100 });
    result.data.forEach((u) => seen.add(u.key));
  }
  assert.equal(seen.size, total);
  for (let i = 0; i < 230; i++) assert.ok(seen.has(`${prefix}-${String(i).padStart(3, '0')}`));
  const tenants = await permit.api.tenants.list({ page: 1, perPage: 100 });
  assert.ok(tenants.some((t) => t.key === 'default'));
  assert.ok(Array.isArray(await permit.api.roles.list()));
  assert.ok(Array.isArray(await permit.api.resources.list()));
});

test('answers as Permit does: null attributes, 32-digit ids, bulk assign over existing, 501', async () => {
  const [post, viewer, editor] = [unique('post'), unique('viewer'), unique('editor')];
  await blogSchema(post, viewer, editor);
  const tenant = await permit.api.tenants.create({ key: unique('t'), name: 'T' });
  assert.equal(tenant.attributes, null, 'as permit-node rbac.e2e.spec.ts asserts against Permit');
  assert.match(tenant.id, /^[0-9a-f]{32}$/);
  assert.equal((await permit.api.tenants.get(tenant.id)).key, tenant.key);
  const { user } = await permit.api.users.sync({ key: unique('u') });
  const batch = [{ user: user.key, role: viewer, tenant: tenant.key }];
  assert.equal((await permit.api.roleAssignments.bulkAssign(batch)).assignments_created, 1);
  assert.equal((await permit.api.roleAssignments.bulkAssign(batch)).assignments_created, 0);
  await assert.rejects(permit.api.conditionSets.list(), (err) => err.response?.status === 501);
});
