// The Node SDK's previous major (`permitio` 1.x, installed under the npm alias `permitio-v1`),
// unchanged, against the local Permit. Its API is flat (`permit.api.syncUser`, `assignRole`, ...),
// so it has its own file; `contract.test.mjs` covers 2.x. Both run under `npm test`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Permit } from 'permitio-v1';
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
    log: { level: 'error' },
  });
});

after(async () => {
  await local?.stop();
});

const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`;

test('1.x: schema, sync, tenant, assign, check, unassign', async () => {
  const [post, viewer] = [unique('post'), unique('viewer')];
  const resource = await permit.api.createResource({
    key: post,
    name: 'Post',
    actions: { read: {}, update: {} },
  });
  assert.deepEqual(Object.keys(resource.actions).sort(), ['read', 'update']);
  const role = await permit.api.createRole({ key: viewer, name: 'Viewer', permissions: [`${post}:read`] });
  assert.deepEqual(role.permissions, [`${post}:read`]);

  const email = `${unique('jane')}@example.com`;
  const user = await permit.api.syncUser({ key: email, email, first_name: 'Jane' });
  assert.equal(user.key, email);
  const again = await permit.api.syncUser({ key: email, email, first_name: 'Janet' });
  assert.equal(again.id, user.id);
  assert.equal((await permit.api.getUser(email)).first_name, 'Janet');
  // Unset attributes come back as null, as Permit answers (permit-node rbac.e2e.spec.ts).
  const tenantKey = unique('acme');
  const tenant = await permit.api.createTenant({ key: tenantKey, name: 'Acme' });
  assert.equal(tenant.key, tenantKey);
  assert.equal(tenant.attributes, null);
  assert.match(tenant.id, /^[0-9a-f]{32}$/, 'ids are 32 hex digits, as Permit emits them');
  const updated = await permit.api.updateTenant(tenantKey, { description: 'ACME' });
  assert.equal(updated.description, 'ACME');

  const assignment = await permit.api.assignRole({ user: email, role: viewer, tenant: tenantKey });
  assert.equal(assignment.role, viewer);
  assert.equal(assignment.tenant, tenantKey);
  const roles = await permit.api.getAssignedRoles(email, tenantKey);
  assert.deepEqual(roles.map((r) => r.role), [viewer]);

  assert.equal(await permit.check(email, 'read', { type: post, tenant: tenantKey }), true);
  assert.equal(await permit.check(email, 'update', { type: post, tenant: tenantKey }), false);

  await permit.api.unassignRole({ user: email, role: viewer, tenant: tenantKey });
  assert.equal(await permit.check(email, 'read', { type: post, tenant: tenantKey }), false);
  await assert.rejects(
    permit.api.unassignRole({ user: email, role: viewer, tenant: tenantKey }),
    (err) => err.response?.status === 404,
  );

  assert.ok((await permit.api.listRoles()).some((r) => r.key === viewer));
  assert.ok((await permit.api.listTenants()).some((t) => t.key === tenantKey));
  await permit.api.deleteTenant(tenantKey);
  await assert.rejects(permit.api.getTenant(tenantKey), (err) => err.response?.status === 404);
  await permit.api.deleteUser(email);
  await permit.api.deleteRole(viewer);
  await permit.api.deleteResource(post);
});
