#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The shipped manifests pass validate.py, and each mistake an API server
refuses is refused here too, with the object and the field named.

Prints one line per case and "N passed, M failed"; exit 1 on any failure.
"""
import copy
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import validate  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SHIPPED = ["manifests/weft.yaml", "manifests/weft-uninstall.yaml",
           "manifests/examples/mesh-namespace.yaml"]
DS = "DaemonSet weft-system/weft-agent"
POD = "spec.template.spec."
AGENT = POD + "containers[0]."


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def ds(docs):
    return find(docs, "DaemonSet", "weft-agent")


def agent(docs):
    return ds(docs)["spec"]["template"]["spec"]["containers"][0]


def setf(get, key, value):
    def mutate(docs):
        get(docs)[key] = value
    return mutate


def delf(get, key):
    def mutate(docs):
        del get(docs)[key]
    return mutate


def mount(docs, name):
    return next(m for m in agent(docs)["volumeMounts"] if m["name"] == name)


def volume(docs, name):
    return next(v for v in ds(docs)["spec"]["template"]["spec"]["volumes"] if v["name"] == name)


# (what, mutation of weft.yaml's documents, the object and field the error must name)
CASES = [
    ("Bidirectional propagation without privileged",
     lambda d: mount(d, "bpffs").update(mountPropagation="Bidirectional"),
     DS, AGENT + "volumeMounts[0].mountPropagation"),
    ("mount propagation outside the enum",
     lambda d: mount(d, "bpffs").update(mountPropagation="Shared"),
     DS, AGENT + "volumeMounts[0].mountPropagation: Unsupported value"),
    ("hostPath type outside the enum",
     lambda d: volume(d, "bpffs")["hostPath"].update(type="Dir"),
     DS, POD + "volumes[0].hostPath.type: Unsupported value"),
    ("hostPath going up",
     lambda d: volume(d, "run")["hostPath"].update(path="/run/../etc"),
     DS, POD + "volumes[2].hostPath.path"),
    ("volume with two sources",
     lambda d: volume(d, "run").update(emptyDir={}),
     DS, POD + "volumes[2]: must specify exactly one volume type"),
    ("mount of a missing volume",
     lambda d: mount(d, "run").update(name="nope"),
     DS, AGENT + "volumeMounts[2].name: Not found"),
    ("probe with two handlers",
     lambda d: agent(d)["readinessProbe"].update(tcpSocket={"port": 9464}),
     DS, AGENT + "readinessProbe: a probe must have exactly one of"),
    ("probe with no handler",
     lambda d: agent(d)["livenessProbe"].pop("exec"),
     DS, AGENT + "livenessProbe: a probe must have exactly one of"),
    ("liveness successThreshold above 1",
     lambda d: agent(d)["livenessProbe"].update(successThreshold=2),
     DS, AGENT + "livenessProbe.successThreshold: must be 1"),
    ("container port out of range",
     lambda d: agent(d).update(ports=[{"name": "metrics", "containerPort": 70000}]),
     DS, AGENT + "ports[0].containerPort: 70000 must be between 1 and 65535"),
    ("hostPort differing from containerPort on the host network",
     lambda d: agent(d).update(ports=[{"name": "metrics", "containerPort": 9464,
                                       "hostPort": 9000}]),
     DS, AGENT + "ports[0].hostPort: must match `containerPort`"),
    ("port name too long",
     lambda d: agent(d).update(ports=[{"name": "prometheus-metrics", "containerPort": 9464}]),
     DS, AGENT + "ports[0].name"),
    ("request above limit",
     lambda d: agent(d)["resources"]["requests"].update(memory="1Gi"),
     DS, AGENT + "resources.requests[memory]: Invalid value: '1Gi'"),
    ("malformed quantity",
     lambda d: agent(d)["resources"]["limits"].update(memory="lots"),
     DS, AGENT + "resources.limits.memory: 'lots' is not a quantity"),
    ("selector not matching the template",
     lambda d: ds(d)["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "x"}),
     DS, "spec.template.metadata.labels: `selector` does not match"),
    ("container name not DNS-1123",
     lambda d: agent(d).update(name="Agent_1"),
     DS, AGENT + "name: 'Agent_1' is not a valid DNS-1123 label"),
    ("object name not DNS-1123",
     lambda d: ds(d)["metadata"].update(name="weft.Agent"),
     "DaemonSet weft-system/weft.Agent", "metadata.name"),
    ("namespace name not a DNS-1123 label",
     lambda d: find(d, "Namespace", "weft-system")["metadata"].update(name="weft.system"),
     "Namespace weft.system", "metadata.name"),
    ("unknown field (strict validation)",
     lambda d: agent(d)["securityContext"].update(privilege=True),
     DS, AGENT + "securityContext.privilege: unknown field"),
    ("missing required field",
     lambda d: agent(d).pop("name"),
     DS, AGENT + "name: Required value"),
    ("wrong type",
     lambda d: ds(d)["spec"]["template"]["spec"].update(hostNetwork="yes"),
     DS, POD + "hostNetwork: must be a boolean"),
    ("label value not a string",
     lambda d: ds(d)["spec"]["template"]["metadata"]["annotations"].update(
         {"prometheus.io/port": 9464}),
     DS, "spec.template.metadata.annotations.prometheus.io/port: must be a string"),
    ("imagePullPolicy outside the enum",
     lambda d: agent(d).update(imagePullPolicy="Sometimes"),
     DS, AGENT + "imagePullPolicy: Unsupported value"),
    ("update strategy outside the enum",
     lambda d: ds(d)["spec"]["updateStrategy"].update(type="Recreate"),
     DS, "spec.updateStrategy.type: Unsupported value"),
    ("maxUnavailable and maxSurge both 0",
     lambda d: ds(d)["spec"]["updateStrategy"]["rollingUpdate"].update(maxSurge=0),
     DS, "spec.updateStrategy.rollingUpdate.maxUnavailable: may not be 0"),
    ("env fieldRef the downward API does not serve to env",
     lambda d: agent(d)["env"][4]["valueFrom"]["fieldRef"].update(fieldPath="status.phase"),
     DS, AGENT + "env[4].valueFrom.fieldRef.fieldPath: Unsupported value"),
    ("allowPrivilegeEscalation false with SYS_ADMIN",
     lambda d: agent(d)["securityContext"].update(allowPrivilegeEscalation=False),
     DS, AGENT + "securityContext: cannot set `allowPrivilegeEscalation` to false"),
    ("seccomp type outside the enum",
     lambda d: agent(d)["securityContext"]["seccompProfile"].update(type="Default"),
     DS, AGENT + "securityContext.seccompProfile.type: Unsupported value"),
    ("toleration Exists with a value",
     lambda d: ds(d)["spec"]["template"]["spec"]["tolerations"][0].update(value="x"),
     DS, POD + "tolerations[0].operator"),
    ("restartPolicy other than Always",
     lambda d: ds(d)["spec"]["template"]["spec"].update(restartPolicy="OnFailure"),
     DS, POD + "restartPolicy: Unsupported value"),
    ("role binding to a Role kind",
     lambda d: find(d, "ClusterRoleBinding", "weft-agent")["roleRef"].update(kind="Role"),
     "ClusterRoleBinding weft-agent", "roleRef.kind: Unsupported value"),
    ("service account subject without namespace",
     lambda d: find(d, "ClusterRoleBinding", "weft-agent")["subjects"][0].pop("namespace"),
     "ClusterRoleBinding weft-agent", "subjects[0].namespace: Required value"),
    ("rule without verbs",
     lambda d: find(d, "ClusterRole", "weft-agent")["rules"][0].update(verbs=[]),
     "ClusterRole weft-agent", "rules[0].verbs"),
    ("ConfigMap key with a slash",
     lambda d: find(d, "ConfigMap", "weft-registry")["data"].update({"a/b": "x"}),
     "ConfigMap weft-system/weft-registry", "data[a/b]"),
    ("namespaced object without namespace",
     lambda d: find(d, "ServiceAccount", "weft-agent")["metadata"].pop("namespace"),
     "ServiceAccount weft-agent", "metadata.namespace: Required value"),
    ("Deployment strategy outside the enum",
     lambda d: find(d, "Deployment", "weft-ca")["spec"].update(strategy={"type": "Rolling"}),
     "Deployment weft-system/weft-ca", "spec.strategy.type: Unsupported value"),
    ("Deployment selector not matching its template",
     lambda d: find(d, "Deployment", "weft-ca")["spec"]["selector"]["matchLabels"].update(
         {"app.kubernetes.io/name": "other"}),
     "Deployment weft-system/weft-ca", "spec.template.metadata.labels"),
    ("role binding to a RoleBinding kind",
     lambda d: find(d, "RoleBinding", "weft-ca")["roleRef"].update(kind="RoleBinding"),
     "RoleBinding weft-system/weft-ca", "roleRef.kind: Unsupported value"),
    ("Role rule without verbs",
     lambda d: find(d, "Role", "weft-ca")["rules"][0].update(verbs=[]),
     "Role weft-system/weft-ca", "rules[0].verbs"),
    ("unknown kind",
     lambda d: find(d, "ConfigMap", "weft-registry").update(apiVersion="v2"),
     "ConfigMap weft-system/weft-registry", "kind: no schema for apiVersion 'v2'"),
]


def main():
    schema = validate.Schema()
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print("%s  %s%s" % ("ok  " if ok else "FAIL", what, detail))

    for path in SHIPPED:
        lines = validate.validate_docs(schema, load(path))
        report(not lines, "%s is accepted (Kubernetes %s)" % (path, schema.release),
               "".join("\n      " + line for line in lines))
    base = load("manifests/weft.yaml")
    for what, mutate, obj, field in CASES:
        docs = copy.deepcopy(base)
        mutate(docs)
        lines = validate.validate_docs(schema, docs)
        hit = [line for line in lines if line.startswith(obj + ":") and field in line]
        report(bool(hit), "refused: " + what,
               "" if hit else "\n      want '%s: ...%s...', got %s" % (obj, field, lines))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
