"""The official Python SDK's ReBAC calls, unchanged, against the local Permit: resource roles,
relations, role derivations, resource instances, relationship tuples, instance role assignments,
and `permit.check` on `type:key` (the blogging-platform template's derived Moderator)."""

import asyncio
import uuid
from importlib.metadata import version

import pytest
from permit import Permit
from permit.exceptions import PermitApiError


def run(coro):
    return asyncio.run(coro)


def sdk(local_permit) -> Permit:
    return Permit(token=local_permit.api_key, pdp=local_permit.pdp_url, api_url=local_permit.api_url)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


CRUD = {"create": {}, "read": {}, "update": {}, "delete": {}}


async def blogging_platform(permit: Permit):
    """Post and Comment, their resource roles, `Comment.parent -> Post` and the derivation
    `Post#Author -> Comment#Moderator`, under fresh keys; returns (post, comment)."""
    post, comment = unique("Post"), unique("Comment")
    await permit.api.resources.create({"key": post, "name": "Post", "actions": CRUD})
    await permit.api.resources.create({"key": comment, "name": "Comment", "actions": CRUD})
    author = await permit.api.resource_roles.create(
        post, {"key": "Author", "name": "Author", "permissions": ["create", "read", "update", "delete"]}
    )
    assert author.key == "Author" and author.resource == post and len(author.permissions) == 4
    await permit.api.resource_roles.create(comment, {"key": "Author", "name": "Author", "permissions": ["create", "read"]})
    await permit.api.resource_roles.create(
        comment, {"key": "Moderator", "name": "Moderator", "permissions": ["create", "read", "update", "delete"]}
    )
    relation = await permit.api.resource_relations.create(
        comment, {"key": "parent", "name": "Parent", "subject_resource": post}
    )
    assert relation.subject_resource == post and relation.object_resource == comment
    derivation = await permit.api.resource_roles.create_role_derivation(
        comment, "Moderator", {"role": "Author", "on_resource": post, "linked_by_relation": "parent"}
    )
    assert (derivation.role, derivation.on_resource, derivation.linked_by_relation) == ("Author", post, "parent")
    return post, comment


def test_rebac_schema_calls(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, comment = await blogging_platform(permit)
        roles = await permit.api.resource_roles.list(comment)
        assert sorted(r.key for r in roles) == ["Author", "Moderator"]
        moderator = await permit.api.resource_roles.get(comment, "Moderator")
        assert [d.role for d in moderator.granted_to.users_with_role] == ["Author"]
        updated = await permit.api.resource_roles.update(comment, "Author", {"name": "Comment author"})
        assert updated.name == "Comment author"
        role = await permit.api.resource_roles.remove_permissions(comment, "Author", ["create"])
        assert role.permissions == ["read"]
        role = await permit.api.resource_roles.assign_permissions(comment, "Author", ["create"])
        assert sorted(role.permissions) == ["create", "read"]
        # The listing is an envelope (Permit's OpenAPI: PaginatedResult[RelationRead]), which
        # permit 3.x reads; permit 2.x parses it as a bare list and fails on Permit too.
        if int(version("permit").split(".")[0]) >= 3:
            relations = await permit.api.resource_relations.list(comment)
            assert [r.key for r in relations.data] == ["parent"]
        assert (await permit.api.resource_relations.get(comment, "parent")).subject_resource == post
        settings = await permit.api.resource_roles.update_role_derivation_conditions(
            comment, "Moderator", {"no_direct_roles_on_object": True}
        )
        assert settings.no_direct_roles_on_object is True
        resource = await permit.api.resources.get(comment)
        assert set(resource.roles) == {"Author", "Moderator"} and set(resource.relations) == {"parent"}
        with pytest.raises(PermitApiError) as err:
            await permit.api.resource_roles.create(comment, {"key": "Author", "name": "Again"})
        assert err.value.status_code == 409
        await permit.api.resource_roles.delete_role_derivation(
            comment, "Moderator", {"role": "Author", "on_resource": post, "linked_by_relation": "parent"}
        )
        await permit.api.resource_relations.delete(comment, "parent")
        await permit.api.resource_roles.delete(comment, "Author")
        with pytest.raises(PermitApiError) as err:
            await permit.api.resource_roles.get(comment, "Author")
        assert err.value.status_code == 404

    run(flow())


def test_instances_tuples_assignments_and_checks(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, comment = await blogging_platform(permit)
        john, emma = unique("john"), unique("emma")
        for u in (john, emma):
            await permit.api.users.sync({"key": u})
        instance = await permit.api.resource_instances.create(
            {"key": "post-1", "resource": post, "tenant": "default", "attributes": {"premium": False}}
        )
        assert instance.key == "post-1" and instance.tenant == "default" and instance.attributes == {"premium": False}
        got = await permit.api.resource_instances.get(f"{post}:post-1")
        assert got.id == instance.id
        updated = await permit.api.resource_instances.update(f"{post}:post-1", {"attributes": {"premium": True}})
        assert updated.attributes == {"premium": True}
        tuple_ = await permit.api.relationship_tuples.create(
            {"subject": f"{post}:post-1", "relation": "parent", "object": f"{comment}:comment-1", "tenant": "default"}
        )
        assert tuple_.subject == f"{post}:post-1" and tuple_.object == f"{comment}:comment-1"
        listed = await permit.api.relationship_tuples.list(subject_key=f"{post}:post-1")
        assert len(listed) == 1
        assignment = await permit.api.role_assignments.assign(
            {"user": john, "role": "Author", "tenant": "default", "resource_instance": f"{post}:post-1"}
        )
        assert assignment.resource_instance == f"{post}:post-1"

        # John is Author of the post, so Moderator of its comment; Emma is not.
        assert await permit.check(john, "delete", f"{comment}:comment-1") is True
        assert await permit.check(emma, "delete", f"{comment}:comment-1") is False
        assert await permit.check(john, "update", f"{post}:post-1") is True
        assert await permit.check(john, "update", {"type": post, "key": "post-2"}) is False
        perms = await permit.get_user_permissions(john, resource_types=[comment])
        assert list(perms) == [f"{comment}:comment-1"]
        assert perms[f"{comment}:comment-1"]["roles"] == ["Moderator"]

        await permit.api.relationship_tuples.delete(
            {"subject": f"{post}:post-1", "relation": "parent", "object": f"{comment}:comment-1"}
        )
        assert await permit.check(john, "delete", f"{comment}:comment-1") is False
        await permit.api.role_assignments.unassign(
            {"user": john, "role": "Author", "tenant": "default", "resource_instance": f"{post}:post-1"}
        )
        assert await permit.check(john, "update", f"{post}:post-1") is False
        await permit.api.resource_instances.delete(f"{post}:post-1")
        with pytest.raises(PermitApiError) as err:
            await permit.api.resource_instances.get(f"{post}:post-1")
        assert err.value.status_code == 404

    run(flow())


def test_rebac_bulk_calls(local_permit):
    async def flow():
        permit = sdk(local_permit)
        post, comment = await blogging_platform(permit)
        await permit.api.resource_instances.bulk_replace(
            [{"key": f"p{i}", "resource": post, "tenant": "default"} for i in range(3)]
        )
        listed = await permit.api.resource_instances.list(resource_key=post)
        assert sorted(i.key for i in listed) == ["p0", "p1", "p2"]
        await permit.api.relationship_tuples.bulk_create(
            [{"subject": f"{post}:p{i}", "relation": "parent", "object": f"{comment}:c{i}"} for i in range(3)]
        )
        tuples = await permit.api.relationship_tuples.list(relation_key="parent")
        assert len([t for t in tuples if t.subject.startswith(f"{post}:")]) == 3
        await permit.api.relationship_tuples.bulk_delete(
            [{"subject": f"{post}:p0", "relation": "parent", "object": f"{comment}:c0"}]
        )
        await permit.api.resource_instances.bulk_delete([f"{post}:p1"])
        tuples = await permit.api.relationship_tuples.list(object_key=f"{comment}:c2")
        assert len(tuples) == 1
        left = await permit.api.resource_instances.list(resource_key=post)
        assert sorted(i.key for i in left) == ["p0", "p2"]

    run(flow())
