#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Trim the Kubernetes OpenAPI (v2 swagger) document to what weft's manifests use.

Input: the api/openapi-spec/swagger.json of a Kubernetes release (the
kubernetes/kubernetes repository; kubernetes-client/python vendors the same
file as kubernetes/swagger.json.unprocessed). Output: the definitions of the
kinds below and every definition they reference, without descriptions, in
tests/fixtures/k8s-openapi-trimmed.json, which tests/manifests/validate.py
checks the manifests against.

  scripts/k8s-schema-trim.py SWAGGER.json RELEASE > tests/fixtures/k8s-openapi-trimmed.json
"""
import json
import sys

# apiVersion, kind -> definition. Every kind weft ships (manifests/, docs).
ROOTS = {
    ("v1", "Namespace"): "io.k8s.api.core.v1.Namespace",
    ("v1", "ServiceAccount"): "io.k8s.api.core.v1.ServiceAccount",
    ("v1", "ConfigMap"): "io.k8s.api.core.v1.ConfigMap",
    ("v1", "Service"): "io.k8s.api.core.v1.Service",
    ("apps/v1", "DaemonSet"): "io.k8s.api.apps.v1.DaemonSet",
    ("apps/v1", "Deployment"): "io.k8s.api.apps.v1.Deployment",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "io.k8s.api.rbac.v1.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "io.k8s.api.rbac.v1.Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "io.k8s.api.rbac.v1.RoleBinding",
}
KEEP = ("type", "format", "properties", "items", "required", "additionalProperties",
        "$ref", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


def strip(node):
    """A schema without its prose; "properties" maps field names to schemas."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "properties":
                out[k] = {f: strip(s) for f, s in v.items()}
            elif k in KEEP:
                out[k] = strip(v)
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        if "$ref" in node:
            out.add(node["$ref"].split("/")[-1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    src = json.load(open(sys.argv[1]))
    defs = src["definitions"]
    keep, todo = {}, list(ROOTS.values())
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = strip(defs[name])
        found = set()
        refs(defs[name], found)
        todo.extend(found - keep.keys())
    out = {
        "release": sys.argv[2],
        "source": "kubernetes api/openapi-spec/swagger.json",
        "roots": {"%s %s" % k: v for k, v in sorted(ROOTS.items())},
        "definitions": dict(sorted(keep.items())),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
