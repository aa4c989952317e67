"""The official Python SDK (`permit` from PyPI), unchanged, against the local Permit."""

import asyncio
import uuid

import pytest
from permit import Permit
from permit.exceptions import PermitApiError


def run(coro):
    return asyncio.run(coro)


def sdk(local_permit) -> Permit:
    return Permit(token=local_permit.api_key, pdp=local_permit.pdp_url, api_url=local_permit.api_url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def blog_schema(permit: Permit, resource: str, viewer: str, editor: str):
    created = await permit.api.resources.create(
        {"key": resource, "name": "Post", "actions": {"read": {}, "update": {}, "delete": {}}}
    )
    assert created.key == resource and set(created.actions) == {"read", "update", "delete"}
    await permit.api.roles.create({"key": viewer, "name": "Viewer", "permissions": [f"{resource}:read"]})
    editor_role = await permit.api.roles.create(
        {"key": editor, "name": "Editor", "permissions": [f"{resource}:update"], "extends": [viewer]}
    )
    assert editor_role.extends == [viewer]


def test_seed_flow_sync_assign_check_unassign(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, viewer, editor = unique("post"), unique("viewer"), unique("editor")
        await blog_schema(permit, post, viewer, editor)

        email = f"{unique('jane')}@example.com"
        user = await permit.api.users.sync({"key": email, "email": email, "first_name": "Jane"})
        assert user.key == email and user.email == email
        again = await permit.api.users.sync({"key": email, "email": email, "first_name": "Janet"})
        assert again.id == user.id and again.first_name == "Janet"

        tenant_key = unique("acme")
        tenant = await permit.api.tenants.create({"key": tenant_key, "name": "Acme"})
        assert tenant.key == tenant_key

        assignment = await permit.api.users.assign_role({"user": email, "role": viewer, "tenant": tenant_key})
        assert assignment.user == email and assignment.role == viewer and assignment.tenant == tenant_key

        assert await permit.check(email, "read", {"type": post, "tenant": tenant_key}) is True
        assert await permit.check(email, "update", {"type": post, "tenant": tenant_key}) is False
        assert await permit.check(email, "read", {"type": post, "tenant": "default"}) is False

        roles = await permit.api.users.get_assigned_roles(email, tenant=tenant_key)
        assert [r.role for r in roles] == [viewer]

        # extends: editor in default grants read through viewer.
        await permit.api.role_assignments.assign({"user": email, "role": editor, "tenant": "default"})
        assert await permit.check(email, "read", post) is True
        assert await permit.check(email, "update", post) is True

        await permit.api.users.unassign_role({"user": email, "role": viewer, "tenant": tenant_key})
        assert await permit.check(email, "read", {"type": post, "tenant": tenant_key}) is False

        # Unassigning again is a 404 (the SDK raises it).
        with pytest.raises(PermitApiError) as err:
            await permit.api.users.unassign_role({"user": email, "role": viewer, "tenant": tenant_key})
        assert err.value.status_code == 404

        perms = await permit.get_user_permissions(email)
        assert sorted(perms["__tenant:default"]["permissions"]) == [f"{post}:read", f"{post}:update"]

    run(flow())


def test_errors_surface_as_in_permit(local_permit):
    async def flow():
        permit = sdk(local_permit)
        key = unique("dup")
        await permit.api.users.create({"key": key})
        with pytest.raises(PermitApiError) as err:
            await permit.api.users.create({"key": key})
        assert err.value.status_code == 409
        with pytest.raises(PermitApiError) as err:
            await permit.api.users.get(unique("missing"))
        assert err.value.status_code == 404
        # The SDK validates keys itself, so exercise the server's 422 through pagination.
        with pytest.raises(PermitApiError) as err:
            await permit.api.users.list(per_page=101)
        assert err.value.status_code == 422

    run(flow())


def test_bulk_operations(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, viewer, editor = unique("post"), unique("viewer"), unique("editor")
        await blog_schema(permit, post, viewer, editor)
        prefix = unique("bulk")
        users = [{"key": f"{prefix}-{i}", "email": f"{prefix}-{i}@example.com"} for i in range(250)]
        await permit.api.users.bulk_replace(users)
        await permit.api.users.bulk_replace(users)  # upsert: idempotent
        tenants = [{"key": f"{prefix}-t{i}", "name": f"T{i}"} for i in range(3)]
        await permit.api.tenants.bulk_create(tenants)

        assignments = [{"user": u["key"], "role": viewer, "tenant": tenants[0]["key"]} for u in users]
        report = await permit.api.role_assignments.bulk_assign(assignments)
        assert report.assignments_created == 250
        listed = await permit.api.role_assignments.list(role_key=viewer, tenant_key=tenants[0]["key"], per_page=100)
        assert len(listed) == 100

        decisions = await permit.bulk_check(
            [
                {"user": users[0]["key"], "action": "read", "resource": {"type": post, "tenant": tenants[0]["key"]}},
                {"user": users[1]["key"], "action": "update", "resource": {"type": post, "tenant": tenants[0]["key"]}},
                {"user": users[2]["key"], "action": "read", "resource": {"type": post, "tenant": tenants[1]["key"]}},
            ]
        )
        assert decisions == [True, False, False]

        removed = await permit.api.role_assignments.bulk_unassign(assignments[:50])
        assert removed.assignments_removed == 50
        assert await permit.check(users[0]["key"], "read", {"type": post, "tenant": tenants[0]["key"]}) is False
        assert await permit.check(users[60]["key"], "read", {"type": post, "tenant": tenants[0]["key"]}) is True

        await permit.api.users.bulk_delete([u["key"] for u in users[:100]])
        with pytest.raises(PermitApiError) as err:
            await permit.api.users.get(users[0]["key"])
        assert err.value.status_code == 404
        await permit.api.tenants.bulk_delete([t["key"] for t in tenants])
        with pytest.raises(PermitApiError):
            await permit.api.tenants.get(tenants[0]["key"])

    run(flow())


def test_listing_with_pagination(local_permit):
    async def flow():
        permit = sdk(local_permit)
        prefix = unique("page")
        await permit.api.users.bulk_create([{"key": f"{prefix}-{i:03}"} for i in range(230)])
        first = await permit.api.users.list(page=1, per_page=100)
        total = first.total_count
        assert total >= 230
        assert first.page_count == -(-total // 100)
        seen = []
        for page in range(1, first.page_count + 1):
            result = await permit.api.users.list(page=page, per_page=100)
            seen.extend(u.key for u in result.data)
        assert len(seen) == total and len(set(seen)) == total
        assert all(f"{prefix}-{i:03}" in seen for i in range(230))

        tenants = await permit.api.tenants.list(page=1, per_page=100)
        assert any(t.key == "default" for t in tenants)
        resources = await permit.api.resources.list()
        roles = await permit.api.roles.list()
        assert isinstance(resources, list) and isinstance(roles, list)

    run(flow())


def test_role_permissions_and_updates(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, viewer, editor = unique("post"), unique("viewer"), unique("editor")
        await blog_schema(permit, post, viewer, editor)
        role = await permit.api.roles.assign_permissions(viewer, [f"{post}:delete"])
        assert set(role.permissions) == {f"{post}:read", f"{post}:delete"}
        role = await permit.api.roles.remove_permissions(viewer, [f"{post}:delete"])
        assert role.permissions == [f"{post}:read"]
        role = await permit.api.roles.update(viewer, {"description": "reads posts"})
        assert role.description == "reads posts"
        tenant_key = unique("t")
        await permit.api.tenants.create({"key": tenant_key, "name": "T", "attributes": {"tier": "gold"}})
        tenant = await permit.api.tenants.update(tenant_key, {"attributes": {"plan": "pro"}})
        assert tenant.attributes == {"plan": "pro"}
        user = await permit.api.users.create({"key": unique("u"), "attributes": {"a": 1, "b": 2}})
        user = await permit.api.users.update(user.key, {"attributes": {"c": 3}})
        assert user.attributes == {"c": 3}
        await permit.api.users.assign_role({"user": user.key, "role": viewer, "tenant": tenant_key})
        members = await permit.api.tenants.list_tenant_users(tenant_key)
        assert [u.key for u in members.data] == [user.key] and members.total_count == 1
        await permit.api.tenants.delete_tenant_user(tenant_key, user.key)
        assert (await permit.api.tenants.list_tenant_users(tenant_key)).total_count == 0
        await permit.api.users.assign_role({"user": user.key, "role": viewer, "tenant": tenant_key})

        # Replacing the resource without `delete` revokes that permission from roles.
        await permit.api.roles.assign_permissions(editor, [f"{post}:delete"])
        resource = await permit.api.resources.replace(post, {"name": "Post", "actions": {"read": {}, "update": {}}})
        assert set(resource.actions) == {"read", "update"}
        assert (await permit.api.roles.get(editor)).permissions == [f"{post}:update"]
        resource = await permit.api.resources.update(post, {"description": "blog posts"})
        assert resource.description == "blog posts"

        await permit.api.resources.delete(post)
        role = await permit.api.roles.get(viewer)
        assert role.permissions == []
        await permit.api.tenants.delete(tenant_key)
        assert await permit.api.role_assignments.list(user_key=user.key) == []

    run(flow())


def test_facts_through_the_pdp(local_permit):
    """`proxy_facts_via_pdp=True`: the SDK writes users and assignments through the PDP."""

    async def flow():
        admin = sdk(local_permit)
        post, viewer, editor = unique("post"), unique("viewer"), unique("editor")
        await blog_schema(admin, post, viewer, editor)
        permit = Permit(
            token=local_permit.api_key,
            pdp=local_permit.pdp_url,
            api_url=local_permit.api_url,
            proxy_facts_via_pdp=True,
            facts_sync_timeout=10,
        )
        key = unique("proxied")
        user = await permit.api.users.sync({"key": key})
        assert user.key == key
        await permit.api.users.assign_role({"user": key, "role": viewer, "tenant": "default"})
        assert await permit.check(key, "read", post) is True
        await permit.api.users.unassign_role({"user": key, "role": viewer, "tenant": "default"})
        assert await permit.check(key, "read", post) is False
        assert (await admin.api.users.get(key)).id == user.id

    run(flow())


def test_answers_as_permit_does(local_permit):
    """What the local Permit answers where Permit's sources say how Permit answers (README)."""

    async def flow():
        permit = sdk(local_permit)
        post, viewer, editor = unique("post"), unique("viewer"), unique("editor")
        await blog_schema(permit, post, viewer, editor)
        # Unset attributes are null (permit-node rbac.e2e.spec.ts: `t.is(tenant.attributes, null)`).
        tenant = await permit.api.tenants.create({"key": unique("t"), "name": "T"})
        assert tenant.attributes is None
        user = await permit.api.users.sync({"key": unique("u")})
        assert user.attributes is None
        # Ids are 32 hex digits, as Permit writes them; the SDK reads them back by id.
        assert len(str(tenant.id).replace("-", "")) == 32
        assert (await permit.api.users.get(str(user.id))).key == user.key
        # A bulk assign over existing assignments: 200, only the new ones counted.
        keys = [user.key, (await permit.api.users.sync({"key": unique("u")})).key]
        first = await permit.api.role_assignments.bulk_assign(
            [{"user": keys[0], "role": viewer, "tenant": tenant.key}]
        )
        again = await permit.api.role_assignments.bulk_assign(
            [{"user": k, "role": viewer, "tenant": tenant.key} for k in keys]
        )
        assert (first.assignments_created, again.assignments_created) == (1, 1)
        # The `resource` filter selects resource-instance roles, of which there are none here.
        assert await permit.api.role_assignments.list(user_key=keys[0], resource_key=post) == []
        assert len(await permit.api.role_assignments.list(user_key=keys[0])) == 1
        # A route the local Permit does not model: 501 naming it, not a 404 "not found".
        with pytest.raises(PermitApiError) as err:
            await permit.api.condition_sets.list()
        assert err.value.status_code == 501

    run(flow())
