// The official Node SDK's ReBAC calls (`permitio`), unchanged, against the local Permit: resource
// roles, relations, role derivations, resource instances, relationship tuples, instance role
// assignments and `permit.check` on `type:key` (the blogging-platform template's Moderator).
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

const unique = (prefix) => `${prefix}_${randomUUID().slice(0, 8)}`;
const crud = { create: {}, read: {}, update: {}, delete: {} };

async function bloggingPlatform() {
  const [post, comment] = [unique('Post'), unique('Comment')];
  await permit.api.resources.create({ key: post, name: 'Post', actions: crud });
  await permit.api.resources.create({ key: comment, name: 'Comment', actions: crud });
  const author = await permit.api.resourceRoles.create(post, {
    key: 'Author',
    name: 'Author',
    permissions: ['create', 'read', 'update', 'delete'],
  });
  assert.equal(author.resource, post);
  await permit.api.resourceRoles.create(comment, { key: 'Author', name: 'Author', permissions: ['create', 'read'] });
  await permit.api.resourceRoles.create(comment, {
    key: 'Moderator',
    name: 'Moderator',
    permissions: ['create', 'read', 'update', 'delete'],
  });
  const relation = await permit.api.resourceRelations.create(comment, {
    key: 'parent',
    name: 'Parent',
    subject_resource: post,
  });
  assert.equal(relation.object_resource, comment);
  const derivation = await permit.api.resourceRoles.createRoleDerivation(comment, 'Moderator', {
    role: 'Author',
    on_resource: post,
    linked_by_relation: 'parent',
  });
  assert.equal(derivation.linked_by_relation, 'parent');
  return [post, comment];
}

test('ReBAC schema: resource roles, relations, derivations', async () => {
  const [post, comment] = await bloggingPlatform();
  const roles = await permit.api.resourceRoles.list({ resourceKey: comment });
  assert.deepEqual(roles.map((r) => r.key).sort(), ['Author', 'Moderator']);
  const moderator = await permit.api.resourceRoles.get(comment, 'Moderator');
  assert.deepEqual(moderator.granted_to.users_with_role.map((d) => d.on_resource), [post]);
  const updated = await permit.api.resourceRoles.update(comment, 'Author', { name: 'Comment author' });
  assert.equal(updated.name, 'Comment author');
  const fewer = await permit.api.resourceRoles.removePermissions(comment, 'Author', ['create']);
  assert.deepEqual(fewer.permissions, ['read']);
  const more = await permit.api.resourceRoles.assignPermissions(comment, 'Author', ['create']);
  assert.deepEqual(more.permissions.sort(), ['create', 'read']);
  const relations = await permit.api.resourceRelations.list({ resourceKey: comment });
  assert.deepEqual((relations.data ?? relations).map((r) => r.key), ['parent']);
  const settings = await permit.api.resourceRoles.updateRoleDerivationConditions(comment, 'Moderator', {
    no_direct_roles_on_object: true,
  });
  assert.equal(settings.no_direct_roles_on_object, true);
  await assert.rejects(permit.api.resourceRoles.create(comment, { key: 'Author', name: 'Again' }), (err) => {
    assert.equal(err.response?.status ?? err.status, 409);
    return true;
  });
  await permit.api.resourceRoles.deleteRoleDerivation(comment, 'Moderator', {
    role: 'Author',
    on_resource: post,
    linked_by_relation: 'parent',
  });
  await permit.api.resourceRelations.delete(comment, 'parent');
  await permit.api.resourceRoles.delete(comment, 'Author');
  const left = await permit.api.resourceRoles.list({ resourceKey: comment });
  assert.deepEqual(left.map((r) => r.key), ['Moderator']);
});

test('instances, tuples, instance assignments and checks on type:key', async () => {
  const [post, comment] = await bloggingPlatform();
  const [john, emma] = [unique('john'), unique('emma')];
  for (const key of [john, emma]) await permit.api.users.sync({ key });
  const instance = await permit.api.resourceInstances.create({
    key: 'post-1',
    resource: post,
    tenant: 'default',
    attributes: { premium: false },
  });
  assert.equal(instance.tenant, 'default');
  assert.equal((await permit.api.resourceInstances.get(`${post}:post-1`)).id, instance.id);
  await permit.api.relationshipTuples.create({
    subject: `${post}:post-1`,
    relation: 'parent',
    object: `${comment}:comment-1`,
    tenant: 'default',
  });
  const tuples = await permit.api.relationshipTuples.list({ subject: `${post}:post-1` });
  assert.equal(tuples.length, 1);
  const assignment = await permit.api.roleAssignments.assign({
    user: john,
    role: 'Author',
    tenant: 'default',
    resource_instance: `${post}:post-1`,
  });
  assert.equal(assignment.resource_instance, `${post}:post-1`);

  assert.equal(await permit.check(john, 'delete', `${comment}:comment-1`), true, 'derived Moderator');
  assert.equal(await permit.check(emma, 'delete', `${comment}:comment-1`), false);
  assert.equal(await permit.check(john, 'update', { type: post, key: 'post-1' }), true);
  const perms = await permit.getUserPermissions(john, undefined, undefined, [comment]);
  assert.deepEqual(Object.keys(perms), [`${comment}:comment-1`]);

  await permit.api.relationshipTuples.delete({
    subject: `${post}:post-1`,
    relation: 'parent',
    object: `${comment}:comment-1`,
  });
  assert.equal(await permit.check(john, 'delete', `${comment}:comment-1`), false);
  await permit.api.roleAssignments.unassign({
    user: john,
    role: 'Author',
    tenant: 'default',
    resource_instance: `${post}:post-1`,
  });
  assert.equal(await permit.check(john, 'update', `${post}:post-1`), false);
  await permit.api.resourceInstances.delete(`${post}:post-1`);
  const left = await permit.api.resourceInstances.list({ resource: post });
  assert.deepEqual(left, []);
});

test('bulk tuples', async () => {
  const [post, comment] = await bloggingPlatform();
  const ops = [0, 1, 2].map((i) => ({ subject: `${post}:p${i}`, relation: 'parent', object: `${comment}:c${i}`, tenant: 'default' }));
  await permit.api.relationshipTuples.bulkRelationshipTuples(ops);
  const created = await permit.api.relationshipTuples.list({ relation: 'parent', tenant: 'default', perPage: 100 });
  assert.equal(created.filter((t) => t.subject.startsWith(`${post}:`)).length, 3);
  await permit.api.relationshipTuples.bulkUnRelationshipTuples(ops.slice(0, 2).map(({ tenant, ...t }) => t));
  const left = await permit.api.relationshipTuples.list({ object: `${comment}:c2` });
  assert.equal(left.length, 1);
});
