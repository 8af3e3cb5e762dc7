#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Validate Kubernetes manifests as an API server would, before a cluster sees them.

Two layers, each error naming the object and the field path:
- the OpenAPI schema of a Kubernetes release (tests/fixtures/k8s-openapi-trimmed.json,
  made by scripts/k8s-schema-trim.py): types, required fields, unknown fields (the
  API server's strict field validation, kubectl's default);
- the semantic rules the API server's validation code applies to what weft's
  manifests use (pkg/apis/core/validation, apps and rbac): enums, names,
  Bidirectional propagation only when privileged, hostPath types, probe shapes,
  port ranges, requests <= limits, the selector matching the template.

  validate.py FILE...      exit 1 and one line per error when any object is refused
"""
import json
import os
import re
import sys

import yaml

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "fixtures", "k8s-openapi-trimmed.json")

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkKMGTPE]i?|)$")

ENUMS = {
    "mountPropagation": {"None", "HostToContainer", "Bidirectional"},
    "hostPathType": {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                     "CharDevice", "BlockDevice"},
    "imagePullPolicy": {"Always", "Never", "IfNotPresent"},
    "protocol": {"TCP", "UDP", "SCTP"},
    "dsUpdateStrategy": {"RollingUpdate", "OnDelete"},
    "deployStrategy": {"RollingUpdate", "Recreate"},
    "restartPolicy": {"Always", "OnFailure", "Never"},
    "dnsPolicy": {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"},
    "profileType": {"RuntimeDefault", "Unconfined", "Localhost"},
    "tolerationOperator": {"Exists", "Equal"},
    "tolerationEffect": {"", "NoSchedule", "PreferNoSchedule", "NoExecute"},
    "selectorOperator": {"In", "NotIn", "Exists", "DoesNotExist"},
}
# The fieldRef paths the downward API serves to environment variables.
ENV_FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                   "status.podIP", "status.podIPs"}
NAMESPACED = {"ServiceAccount", "ConfigMap", "Service", "DaemonSet", "Deployment", "Role",
              "RoleBinding"}


class Errors:
    def __init__(self):
        self.lines = []
        self.obj = "?"

    def add(self, path, msg):
        self.lines.append("%s: %s: %s" % (self.obj, path or "(object)", msg))


# ---------------------------------------------------------------- schema

class Schema:
    def __init__(self, path=SCHEMA):
        doc = json.load(open(path))
        self.release = doc["release"]
        self.defs = doc["definitions"]
        self.roots = doc["roots"]

    def check(self, node, schema, path, err):
        ref = schema.get("$ref")
        if ref:
            name = ref.split("/")[-1]
            if name.endswith("resource.Quantity"):
                if isinstance(node, bool) or not isinstance(node, (str, int, float)):
                    err.add(path, "a quantity must be a string or a number")
                elif not QUANTITY.match(str(node)):
                    err.add(path, "'%s' is not a quantity" % node)
                return
            return self.check(node, self.defs[name], path, err)
        t = schema.get("type")
        if schema.get("format") == "int-or-string":
            if isinstance(node, bool) or not isinstance(node, (str, int)):
                err.add(path, "must be an integer or a string")
            return
        if t == "object" or "properties" in schema:
            if not isinstance(node, dict):
                err.add(path, "must be an object, not %s" % type(node).__name__)
                return
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key in schema.get("required", []):
                if key not in node:
                    err.add(join(path, key), "Required value")
            for key, value in node.items():
                sub = join(path, key)
                if props is not None and key in props:
                    self.check(value, props[key], sub, err)
                elif extra is not None:
                    self.check(value, extra, sub, err)
                elif props is not None:
                    err.add(sub, "unknown field (strict field validation refuses it)")
            return
        if t == "array":
            if not isinstance(node, list):
                err.add(path, "must be a list")
                return
            for i, item in enumerate(node):
                self.check(item, schema.get("items", {}), "%s[%d]" % (path, i), err)
            return
        if t == "string" and not isinstance(node, str):
            err.add(path, "must be a string, not %s (quote it)" % type(node).__name__)
        elif t == "integer" and (isinstance(node, bool) or not isinstance(node, int)):
            err.add(path, "must be an integer")
        elif t == "integer" and schema.get("format") == "int32" and not -2**31 <= node < 2**31:
            err.add(path, "out of int32 range")
        elif t == "boolean" and not isinstance(node, bool):
            err.add(path, "must be a boolean")
        elif t == "number" and (isinstance(node, bool) or not isinstance(node, (int, float))):
            err.add(path, "must be a number")


def join(path, key):
    return "%s.%s" % (path, key) if path else key


# ---------------------------------------------------------------- semantics

def quantity(q):
    """A quantity as a float (enough to compare requests with limits)."""
    m = QUANTITY.match(str(q))
    if not m:
        return None
    num, suffix = float(m.group(1)), m.group(2)
    scale = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "Pi": 2**50, "Ei": 2**60}
    if suffix[:1] in "eE" and suffix:
        return num * 10 ** int(suffix[1:])
    return num * scale.get(suffix, 1)


def check_name(value, pattern, what, path, err, maxlen):
    if not isinstance(value, str) or not value:
        err.add(path, "Required value")
    elif len(value) > maxlen or not pattern.match(value):
        err.add(path, "'%s' is not a valid %s (lowercase letters, digits, '-', at most %d)"
                % (value, what, maxlen))


def check_meta(obj, err):
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    name = meta.get("name")
    if kind == "Namespace":
        check_name(name, DNS1123_LABEL, "DNS-1123 label", "metadata.name", err, 63)
    elif kind in ("ClusterRole", "ClusterRoleBinding"):
        if not name or "/" in name or "%" in name or name in (".", ".."):
            err.add("metadata.name", "'%s' is not a valid path segment name" % name)
    else:
        check_name(name, DNS1123_SUBDOMAIN, "DNS-1123 subdomain", "metadata.name", err, 253)
    if kind in NAMESPACED and not meta.get("namespace"):
        err.add("metadata.namespace", "Required value (weft's objects name their namespace)")
    for field in ("labels",):
        for key, value in (meta.get(field) or {}).items():
            check_label(key, value, "metadata.labels", err)


def check_label(key, value, path, err):
    name = key.split("/")[-1]
    prefix = key[:-len(name) - 1] if "/" in key else ""
    if len(name) > 63 or not QUALIFIED_NAME.match(name) or \
            (prefix and not DNS1123_SUBDOMAIN.match(prefix)):
        err.add("%s[%s]" % (path, key), "not a valid label key")
    if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
        err.add("%s[%s]" % (path, key), "'%s' is not a valid label value" % value)


def enum(value, which, path, err):
    if value is not None and value not in ENUMS[which]:
        err.add(path, "Unsupported value: '%s': supported values: %s"
                % (value, ", ".join("'%s'" % v for v in sorted(ENUMS[which]))))


def one_of(node, fields, path, err, what):
    present = [f for f in fields if f in node]
    if len(present) != 1:
        err.add(path, "%s must have exactly one of %s, has %s"
                % (what, ", ".join(fields), ", ".join(present) or "none"))


def check_probe(probe, path, err, liveness):
    if probe is None:
        return
    one_of(probe, ("exec", "httpGet", "tcpSocket", "grpc"), path, err, "a probe")
    if "exec" in probe and not (probe["exec"] or {}).get("command"):
        err.add(join(path, "exec.command"), "Required value")
    for field, low in (("periodSeconds", 1), ("timeoutSeconds", 1), ("failureThreshold", 1),
                       ("successThreshold", 1), ("initialDelaySeconds", 0)):
        if field in probe and probe[field] < low:
            err.add(join(path, field), "must be greater than or equal to %d" % low)
    if liveness and probe.get("successThreshold", 1) != 1:
        err.add(join(path, "successThreshold"), "must be 1")


def check_port_number(value, path, err, low=1):
    if isinstance(value, int) and not low <= value <= 65535:
        err.add(path, "%d must be between %d and 65535, inclusive" % (value, low))
    elif isinstance(value, str) and not IANA_SVC_NAME.match(value):
        err.add(path, "'%s' is not a port name" % value)


def check_container(c, path, volumes, spec, err):
    check_name(c.get("name"), DNS1123_LABEL, "DNS-1123 label", join(path, "name"), err, 63)
    if not c.get("image"):
        err.add(join(path, "image"), "Required value")
    enum(c.get("imagePullPolicy"), "imagePullPolicy", join(path, "imagePullPolicy"), err)
    sc = c.get("securityContext") or {}
    privileged = sc.get("privileged") is True
    caps = (sc.get("capabilities") or {}).get("add") or []
    if sc.get("allowPrivilegeEscalation") is False:
        if privileged:
            err.add(join(path, "securityContext"),
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        if "SYS_ADMIN" in caps or "CAP_SYS_ADMIN" in caps:
            err.add(join(path, "securityContext"), "cannot set `allowPrivilegeEscalation` to "
                    "false and `capabilities.Add` CAP_SYS_ADMIN")
    for prof in ("seccompProfile", "appArmorProfile"):
        p = sc.get(prof)
        if p is not None:
            enum(p.get("type"), "profileType", join(path, "securityContext.%s.type" % prof), err)
            if (p.get("type") == "Localhost") != ("localhostProfile" in p):
                err.add(join(path, "securityContext.%s.localhostProfile" % prof),
                        "required exactly when type is Localhost")
    names, seen_ports = set(), set()
    for i, port in enumerate(c.get("ports") or []):
        ppath = "%s.ports[%d]" % (path, i)
        check_port_number(port.get("containerPort"), join(ppath, "containerPort"), err)
        if "hostPort" in port:
            check_port_number(port["hostPort"], join(ppath, "hostPort"), err, low=0)
            if spec.get("hostNetwork") and port["hostPort"] != port.get("containerPort"):
                err.add(join(ppath, "hostPort"), "must match `containerPort` when "
                        "`hostNetwork` is true")
        enum(port.get("protocol"), "protocol", join(ppath, "protocol"), err)
        if "name" in port:
            n = port["name"]
            if len(n) > 15 or not IANA_SVC_NAME.match(n) or "--" in n or \
                    not re.search("[a-z]", n):
                err.add(join(ppath, "name"), "'%s' is not an IANA service name" % n)
            if n in names:
                err.add(join(ppath, "name"), "Duplicate value: '%s'" % n)
            names.add(n)
        key = (port.get("containerPort"), port.get("protocol", "TCP"))
        if key in seen_ports:
            err.add(ppath, "Duplicate value: port %s/%s" % key)
        seen_ports.add(key)
    for i, env in enumerate(c.get("env") or []):
        epath = "%s.env[%d]" % (path, i)
        if not env.get("name") or "=" in env["name"]:
            err.add(join(epath, "name"), "'%s' is not a valid environment variable name"
                    % env.get("name"))
        if "value" in env and "valueFrom" in env:
            err.add(join(epath, "valueFrom"), "may not be specified when `value` is not empty")
        vf = env.get("valueFrom")
        if vf is not None:
            one_of(vf, ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef",
                        "fileKeyRef"), join(epath, "valueFrom"), err, "valueFrom")
            fp = (vf.get("fieldRef") or {}).get("fieldPath")
            if fp is not None and fp not in ENV_FIELD_PATHS and \
                    not re.match(r"^metadata\.(labels|annotations)\['[^']+'\]$", fp):
                err.add(join(epath, "valueFrom.fieldRef.fieldPath"),
                        "Unsupported value: '%s'" % fp)
    mounts = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        mpath = "%s.volumeMounts[%d]" % (path, i)
        if m.get("name") not in volumes:
            err.add(join(mpath, "name"), "Not found: '%s' (no volume of that name)"
                    % m.get("name"))
        if m.get("mountPath") in mounts:
            err.add(join(mpath, "mountPath"), "Invalid value: '%s': must be unique"
                    % m.get("mountPath"))
        mounts.add(m.get("mountPath"))
        prop = m.get("mountPropagation")
        enum(prop, "mountPropagation", join(mpath, "mountPropagation"), err)
        if prop == "Bidirectional" and not privileged:
            err.add(join(mpath, "mountPropagation"), "Bidirectional mount propagation is "
                    "available only to privileged containers")
    check_probe(c.get("readinessProbe"), join(path, "readinessProbe"), err, False)
    check_probe(c.get("livenessProbe"), join(path, "livenessProbe"), err, True)
    check_probe(c.get("startupProbe"), join(path, "startupProbe"), err, True)
    for hook in ("postStart", "preStop"):
        h = (c.get("lifecycle") or {}).get(hook)
        if h is not None:
            one_of(h, ("exec", "httpGet", "tcpSocket", "sleep"),
                   join(path, "lifecycle." + hook), err, "a lifecycle handler")
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    for r, value in req.items():
        if r in lim and quantity(value) is not None and quantity(lim[r]) is not None and \
                quantity(value) > quantity(lim[r]):
            err.add(join(path, "resources.requests[%s]" % r),
                    "Invalid value: '%s': must be less than or equal to %s limit of %s"
                    % (value, r, lim[r]))


def check_pod_spec(spec, path, err):
    volumes = {}
    for i, v in enumerate(spec.get("volumes") or []):
        vpath = "%s.volumes[%d]" % (path, i)
        check_name(v.get("name"), DNS1123_LABEL, "DNS-1123 label", join(vpath, "name"), err, 63)
        if v.get("name") in volumes:
            err.add(join(vpath, "name"), "Duplicate value: '%s'" % v.get("name"))
        volumes[v.get("name")] = v
        sources = [k for k in v if k != "name"]
        if len(sources) != 1:
            err.add(vpath, "must specify exactly one volume type, has %s"
                    % (", ".join(sources) or "none"))
        hp = v.get("hostPath")
        if hp is not None:
            enum(hp.get("type"), "hostPathType", join(vpath, "hostPath.type"), err)
            if ".." in str(hp.get("path", "")).split("/"):
                err.add(join(vpath, "hostPath.path"), "must not contain '..'")
    names = set()
    for group in ("initContainers", "containers"):
        containers = spec.get(group) or []
        if group == "containers" and not containers:
            err.add(join(path, group), "Required value")
        for i, c in enumerate(containers):
            cpath = "%s.%s[%d]" % (path, group, i)
            if c.get("name") in names:
                err.add(join(cpath, "name"), "Duplicate value: '%s'" % c.get("name"))
            names.add(c.get("name"))
            check_container(c, cpath, volumes, spec, err)
    enum(spec.get("restartPolicy"), "restartPolicy", join(path, "restartPolicy"), err)
    enum(spec.get("dnsPolicy"), "dnsPolicy", join(path, "dnsPolicy"), err)
    if spec.get("priorityClassName"):
        check_name(spec["priorityClassName"], DNS1123_SUBDOMAIN, "DNS-1123 subdomain",
                   join(path, "priorityClassName"), err, 253)
    for i, t in enumerate(spec.get("tolerations") or []):
        tpath = "%s.tolerations[%d]" % (path, i)
        enum(t.get("operator"), "tolerationOperator", join(tpath, "operator"), err)
        enum(t.get("effect"), "tolerationEffect", join(tpath, "effect"), err)
        if t.get("operator") == "Exists" and t.get("value"):
            err.add(join(tpath, "operator"), "value must be empty when `operator` is 'Exists'")


def selector_matches(sel, labels, path, err):
    for key, value in (sel.get("matchLabels") or {}).items():
        check_label(key, value, join(path, "matchLabels"), err)
        if labels.get(key) != value:
            return False
    for i, e in enumerate(sel.get("matchExpressions") or []):
        op, vals = e.get("operator"), e.get("values") or []
        enum(op, "selectorOperator", "%s.matchExpressions[%d].operator" % (path, i), err)
        present = e.get("key") in labels
        if op == "In" and labels.get(e.get("key")) not in vals or \
                op == "NotIn" and labels.get(e.get("key")) in vals or \
                op == "Exists" and not present or op == "DoesNotExist" and present:
            return False
    return True


def int_or_percent(value, path, err):
    if isinstance(value, str):
        if not re.match(r"^[0-9]+%$", value):
            err.add(path, "'%s' must be an integer or a percentage" % value)
            return None
        return int(value[:-1])
    if value < 0:
        err.add(path, "must be greater than or equal to 0")
    return value


def check_template(obj, err):
    """What DaemonSets and Deployments share: a selector matching the pod template."""
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    sel = spec.get("selector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        err.add("spec.selector", "empty selector is invalid for %s" % obj["kind"].lower())
    elif not selector_matches(sel, labels, "spec.selector", err):
        err.add("spec.template.metadata.labels", "`selector` does not match template `labels`")
    for key, value in labels.items():
        check_label(key, value, "spec.template.metadata.labels", err)
    pod = template.get("spec") or {}
    if pod.get("restartPolicy", "Always") != "Always":
        err.add("spec.template.spec.restartPolicy", "Unsupported value: '%s': supported "
                "values: 'Always'" % pod["restartPolicy"])
    check_pod_spec(pod, "spec.template.spec", err)


def check_deployment(obj, err):
    check_template(obj, err)
    spec = obj.get("spec") or {}
    if spec.get("replicas", 1) < 0:
        err.add("spec.replicas", "must be greater than or equal to 0")
    st = spec.get("strategy") or {}
    enum(st.get("type"), "deployStrategy", "spec.strategy.type", err)
    if st.get("rollingUpdate") is not None and st.get("type", "RollingUpdate") != "RollingUpdate":
        err.add("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is "
                "'Recreate'")


def check_daemonset(obj, err):
    check_template(obj, err)
    spec = obj.get("spec") or {}
    us = spec.get("updateStrategy") or {}
    enum(us.get("type"), "dsUpdateStrategy", "spec.updateStrategy.type", err)
    ru = us.get("rollingUpdate")
    if ru is not None:
        if us.get("type", "RollingUpdate") != "RollingUpdate":
            err.add("spec.updateStrategy.rollingUpdate", "may not be set when type is not "
                    "RollingUpdate")
        mu = int_or_percent(ru.get("maxUnavailable", 1), "spec.updateStrategy.rollingUpdate."
                            "maxUnavailable", err)
        ms = int_or_percent(ru.get("maxSurge", 0), "spec.updateStrategy.rollingUpdate.maxSurge",
                            err)
        if mu == 0 and ms == 0:
            err.add("spec.updateStrategy.rollingUpdate.maxUnavailable",
                    "may not be 0 when `maxSurge` is 0")


def check_rbac(obj, err):
    kind = obj["kind"]
    if kind in ("ClusterRole", "Role"):
        for i, rule in enumerate(obj.get("rules") or []):
            rpath = "rules[%d]" % i
            if not rule.get("verbs"):
                err.add(join(rpath, "verbs"), "verbs must contain at least one value")
            if rule.get("resources") and not rule.get("apiGroups"):
                err.add(join(rpath, "apiGroups"),
                        "resource rules must supply at least one api group")
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        ref = obj.get("roleRef") or {}
        if ref.get("apiGroup") != "rbac.authorization.k8s.io":
            err.add("roleRef.apiGroup", "Unsupported value: '%s'" % ref.get("apiGroup"))
        # A RoleBinding may grant a ClusterRole within its namespace.
        kinds = ("ClusterRole",) if kind == "ClusterRoleBinding" else ("Role", "ClusterRole")
        if ref.get("kind") not in kinds:
            err.add("roleRef.kind", "Unsupported value: '%s': supported values: %s"
                    % (ref.get("kind"), ", ".join("'%s'" % k for k in kinds)))
        for i, s in enumerate(obj.get("subjects") or []):
            spath = "subjects[%d]" % i
            if s.get("kind") == "ServiceAccount":
                if s.get("apiGroup"):
                    err.add(join(spath, "apiGroup"), "must be '' for a ServiceAccount")
                if not s.get("namespace"):
                    err.add(join(spath, "namespace"), "Required value")
            elif s.get("kind") not in ("User", "Group"):
                err.add(join(spath, "kind"), "Unsupported value: '%s'" % s.get("kind"))


def check_configmap(obj, err):
    size = 0
    for field in ("data", "binaryData"):
        for key, value in (obj.get(field) or {}).items():
            if not CONFIG_KEY.match(key) or len(key) > 253:
                err.add("%s[%s]" % (field, key), "a valid config key must consist of "
                        "alphanumeric characters, '-', '_' or '.'")
            size += len(value or "")
    if size > 1 << 20:
        err.add("data", "Too long: must have at most 1048576 bytes")


def validate_obj(schema, obj, err):
    if not isinstance(obj, dict):
        err.add("", "a document must be an object")
        return
    kind, api = obj.get("kind"), obj.get("apiVersion")
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    err.obj = "%s %s%s" % (kind, ns + "/" if ns else "", meta.get("name"))
    root = schema.roots.get("%s %s" % (api, kind))
    if not root:
        err.add("kind", "no schema for apiVersion '%s' kind '%s' in Kubernetes %s"
                % (api, kind, schema.release))
        return
    before = len(err.lines)
    schema.check(obj, {"$ref": "#/definitions/" + root}, "", err)
    if len(err.lines) > before:
        return  # the semantic rules assume the shape is right
    check_meta(obj, err)
    if kind == "DaemonSet":
        check_daemonset(obj, err)
    elif kind == "Deployment":
        check_deployment(obj, err)
    elif kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        check_rbac(obj, err)
    elif kind == "ConfigMap":
        check_configmap(obj, err)


def validate_docs(schema, docs):
    """The errors of a list of parsed documents (None ones are skipped)."""
    err = Errors()
    for obj in docs:
        if obj is not None:
            validate_obj(schema, obj, err)
    return err.lines


def main(argv):
    schema = Schema()
    bad = 0
    for path in argv[1:]:
        with open(path) as f:
            lines = validate_docs(schema, list(yaml.safe_load_all(f)))
        for line in lines:
            print("%s: %s" % (path, line))
        bad += len(lines)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
