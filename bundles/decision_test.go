package bundles_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	rtdebug "runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/internal/gctune"
	"github.com/palisade-dev/palisade/policy"
)

type admissionCase struct {
	name    string
	req     *bundles.Request
	audit   bool      // evaluate against the prod policy in audit mode
	now     time.Time // zero: now
	allowed bool
	// violations is the exact set of rule names violated.
	violations []string
	// messages must each equal the message of some violation.
	messages []string
	// warnings, when not nil, are the exact warnings.
	warnings []string
}

// Rule names, so that a typo is a compile error.
const (
	privileged                   = "privileged"
	hostNamespaces               = "hostNamespaces"
	hostPorts                    = "hostPorts"
	hostPathVolumes              = "hostPathVolumes"
	blockedHostPaths             = "blockedHostPaths"
	podSecurityStandards         = "podSecurityStandards"
	automountServiceAccountToken = "automountServiceAccountToken"
	capabilities                 = "capabilities"
	allowPrivilegeEscalation     = "allowPrivilegeEscalation"
	runAsRoot                    = "runAsRoot"
	readOnlyRootFilesystem       = "readOnlyRootFilesystem"
	resources                    = "resources"
	allowedRegistries            = "allowedRegistries"
	imageName                    = "imageName"
	imageTag                     = "imageTag"
	latestTag                    = "latestTag"
	digestPinning                = "digestPinning"
	kubectlAccess                = "kubectlAccess"
)

func rules(names ...string) []string { return names }

// busyboxWarnings are the log violations of the privileged busybox pod.
var busyboxWarnings = []string{
	`containerSecurityContext violates rule allowPrivilegeEscalation "allowPrivilegeEscalation=unset" in container(s) "busybox-container" (log)`,
	`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "busybox-container" (log)`,
	`containerSecurityContext violates rule runAsRoot "runAsNonRoot unset" in container(s) "busybox-container" (log)`,
	`image violates rule digestPinning "busybox:1.36" in container(s) "busybox-container" (log)`,
	`podSpec violates rule automountServiceAccountToken "automountServiceAccountToken=unset" (log)`,
	`resources violates rule resources "limits.memory missing" in container(s) "busybox-container" (log)`,
	`resources violates rule resources "requests.cpu missing" in container(s) "busybox-container" (log)`,
}

func admissionCases() []admissionCase {
	// A pod that runs as root without asking to (legacy-billing style).
	asRoot := []mutation{set("securityContext.runAsNonRoot", nil), set("securityContext.runAsUser", 0)}
	legacyBilling := append([]mutation{label("app", "legacy-billing")}, asRoot...)
	debugTools := []mutation{label("app", "debug-tools"), set("containers.0.securityContext", obj{"privileged": true})}
	webPod := pod("default", "web")
	return []admissionCase{
		// Compliant workloads: no violation at all, in every namespace.
		{name: "compliant pod in default has no violations", req: create(pod("default", "web")), allowed: true, warnings: []string{}},
		{name: "compliant pod in monitoring has no violations", req: create(pod("monitoring", "web")), allowed: true},
		{name: "compliant pod in payments has no violations", req: create(pod("payments", "payments-api")), allowed: true},
		{name: "compliant pod in ci has no violations", req: create(pod("ci", "builder")), allowed: true},
		{name: "compliant pod in ci-runners has no violations", req: create(pod("ci-runners", "runner")), allowed: true},
		{name: "compliant Deployment has no violations", req: create(workload("Deployment", "default", "web")), allowed: true},
		{name: "compliant ReplicaSet has no violations", req: create(workload("ReplicaSet", "default", "web")), allowed: true},
		{name: "compliant StatefulSet has no violations", req: create(workload("StatefulSet", "default", "db")), allowed: true},
		{name: "compliant DaemonSet has no violations", req: create(workload("DaemonSet", "default", "agent")), allowed: true},
		{name: "compliant Job has no violations", req: create(workload("Job", "default", "migrate")), allowed: true},
		{name: "compliant CronJob has no violations", req: create(workload("CronJob", "default", "report")), allowed: true},
		{name: "compliant Deployment in payments has no violations", req: create(workload("Deployment", "payments", "payments-api")), allowed: true},
		{name: "compliant two-container pod has no violations", req: create(pod("default", "web", appendTo("containers", compliantContainer("log-shipper", sidecarImage)))), allowed: true},

		// The privileged busybox pod of samples/pods.yaml.
		{
			name: "privileged busybox pod is denied with the exact message", req: create(busybox("default")),
			violations: rules(privileged, podSecurityStandards, automountServiceAccountToken, allowPrivilegeEscalation, readOnlyRootFilesystem, runAsRoot, digestPinning, resources),
			messages: []string{
				`containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (block)`,
				`pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (block)`,
			},
			warnings: busyboxWarnings,
		},

		// Pod rules.
		{
			name: "privileged container is denied", req: create(pod("default", "web", set("containers.0.securityContext.privileged", true))),
			violations: rules(privileged, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule privileged "true" in container(s) "app" (block)`},
		},
		{
			name:       "privileged init container is denied naming the init container",
			req:        create(pod("default", "web", appendTo("initContainers", with(compliantContainer("init", webImage), "securityContext.privileged", true)))),
			violations: rules(privileged, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule privileged "true" in container(s) "init" (block)`},
		},
		{name: "privileged false is allowed", req: create(pod("default", "web", set("containers.0.securityContext.privileged", false))), allowed: true},
		{
			name: "hostNetwork is denied", req: create(pod("default", "web", set("hostNetwork", true))),
			violations: rules(hostNamespaces, podSecurityStandards),
			messages:   []string{`podSpec violates rule hostNamespaces "hostNetwork=true" (block)`},
		},
		{name: "StatefulSet with hostPID is denied", req: create(workload("StatefulSet", "default", "db", set("hostPID", true))), violations: rules(hostNamespaces, podSecurityStandards)},
		{name: "DaemonSet with hostIPC is denied", req: create(workload("DaemonSet", "default", "agent", set("hostIPC", true))), violations: rules(hostNamespaces, podSecurityStandards)},
		{name: "hostNetwork false is allowed", req: create(pod("default", "web", set("hostNetwork", false))), allowed: true},
		{
			name:       "allowed hostPort 8443 passes hostPorts but Pod Security baseline still blocks it",
			req:        create(pod("default", "web", set("containers.0.ports.0.hostPort", 8443))),
			violations: rules(podSecurityStandards),
		},
		{
			name: "hostPort 9100 is denied", req: create(pod("default", "web", set("containers.0.ports.0.hostPort", 9100))),
			violations: rules(hostPorts, podSecurityStandards),
			messages:   []string{`containerPorts violates rule hostPorts "hostPort=9100" in container(s) "app" (block)`},
		},
		{
			name: "hostPath /data is logged and blocked by Pod Security baseline", req: create(pod("default", "web", hostPath("data", "/data", true))),
			violations: rules(hostPathVolumes, podSecurityStandards),
			messages:   []string{`volumes violates rule hostPathVolumes "/data" in container(s) "app" (log)`},
		},
		{
			name: "hostPath /var/run/docker.sock is a blocked host path", req: create(pod("default", "web", hostPath("docker", "/var/run/docker.sock", true))),
			violations: rules(blockedHostPaths, hostPathVolumes, podSecurityStandards),
			messages:   []string{`volumes violates rule blockedHostPaths "/var/run/docker.sock" in container(s) "app" (block)`},
		},
		{name: "hostPath /var/running is not under /var/run", req: create(pod("default", "web", hostPath("running", "/var/running", true))), violations: rules(hostPathVolumes, podSecurityStandards)},
		{name: "hostPath /var//run/ is under /var/run", req: create(pod("default", "web", hostPath("run", "/var//run/", true))), violations: rules(blockedHostPaths, hostPathVolumes, podSecurityStandards)},
		{
			name: "unmounted blocked hostPath volume is reported for the pod", req: create(pod("default", "web", hostPath("etc", "/etc", false))),
			violations: rules(blockedHostPaths, hostPathVolumes, podSecurityStandards),
			messages:   []string{`volumes violates rule blockedHostPaths "/etc" (block)`},
		},
		{
			// "/" (and "/var") hold /etc and /var/run: a host path above a
			// blocked one exposes it (fixed in 23ed124).
			name: "hostPath / exposes every blocked path and is a blocked host path", req: create(pod("default", "web", hostPath("root", "/", true))),
			violations: rules(blockedHostPaths, hostPathVolumes, podSecurityStandards),
		},
		{
			name: "automountServiceAccountToken unset is a warning", req: create(pod("default", "web", set("automountServiceAccountToken", nil))),
			allowed: true, violations: rules(automountServiceAccountToken),
			warnings: []string{`podSpec violates rule automountServiceAccountToken "automountServiceAccountToken=unset" (log)`},
		},
		{
			name: "automountServiceAccountToken true is a warning", req: create(pod("default", "web", set("automountServiceAccountToken", true))),
			allowed: true, violations: rules(automountServiceAccountToken),
			warnings: []string{`podSpec violates rule automountServiceAccountToken "automountServiceAccountToken=true" (log)`},
		},

		// Pod Security Standards.
		{
			name: "seccomp Unconfined violates Pod Security baseline", req: create(pod("default", "web", set("securityContext.seccompProfile.type", "Unconfined"))),
			violations: rules(podSecurityStandards),
			messages:   []string{`pss.baseline violates rule podSecurityStandards "seccomp: seccompProfile.type=Unconfined" (block)`},
		},
		{
			name: "unsafe sysctl violates Pod Security baseline", req: create(pod("default", "web", set("securityContext.sysctls", list{obj{"name": "kernel.msgmax", "value": "65536"}}))),
			violations: rules(podSecurityStandards),
			messages:   []string{`pss.baseline violates rule podSecurityStandards "sysctls: sysctl kernel.msgmax" (block)`},
		},
		{name: "default only requires baseline: no seccomp profile is allowed", req: create(pod("default", "web", set("securityContext.seccompProfile", nil))), allowed: true},
		{
			name: "namespace payments requires Pod Security restricted", req: create(pod("payments", "payments-api", set("securityContext.seccompProfile", nil))),
			violations: rules(podSecurityStandards),
			messages:   []string{`pss.restricted violates rule podSecurityStandards "seccompRestricted: seccompProfile unset" in container(s) "app" (block)`},
		},

		// Container rules.
		{
			name: "capability SYS_ADMIN is denied", req: create(pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"SYS_ADMIN"}))),
			violations: rules(capabilities, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule capabilities "SYS_ADMIN" in container(s) "app" (block)`},
		},
		{
			name: "capability cap_net_admin is normalised and denied", req: create(pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"cap_net_admin"}))),
			violations: rules(capabilities, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule capabilities "NET_ADMIN" in container(s) "app" (block)`},
		},
		{name: "non-default capability SYS_PTRACE is denied by restrict-nondefaults", req: create(pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"SYS_PTRACE"}))), violations: rules(capabilities, podSecurityStandards)},
		{name: "runtime-default capability CHOWN may be added back", req: create(pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"CHOWN"}))), allowed: true},
		{name: "NET_RAW passes restrict-nondefaults but not Pod Security baseline", req: create(pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"NET_RAW"}))), violations: rules(podSecurityStandards)},
		{
			// `securityContext:` left empty in YAML is null; the API server
			// reads it as unset, and evaluation must not fail (fixed in 23ed124).
			name: "null container securityContext is treated as unset",
			req: create(pod("default", "web", func(t template) {
				t.spec["containers"].(list)[0].(obj)["securityContext"] = nil
			})),
			allowed: true, violations: rules(allowPrivilegeEscalation, readOnlyRootFilesystem),
		},
		{name: "no capabilities section keeps the runtime defaults and is allowed", req: create(pod("default", "web", set("containers.0.securityContext.capabilities", nil))), allowed: true},
		{
			name: "allowPrivilegeEscalation unset is a warning", req: create(pod("default", "web", set("containers.0.securityContext.allowPrivilegeEscalation", nil))),
			allowed: true, violations: rules(allowPrivilegeEscalation),
			warnings: []string{`containerSecurityContext violates rule allowPrivilegeEscalation "allowPrivilegeEscalation=unset" in container(s) "app" (log)`},
		},
		{
			name: "runAsUser 0 is a warning cluster-wide", req: create(pod("default", "web", asRoot...)),
			allowed: true, violations: rules(runAsRoot),
			warnings: []string{`containerSecurityContext violates rule runAsRoot "runAsUser=0" in container(s) "app" (log)`},
		},
		{name: "runAsNonRoot false is a warning", req: create(pod("default", "web", set("securityContext.runAsNonRoot", false), set("securityContext.runAsUser", nil))), allowed: true, violations: rules(runAsRoot)},
		{name: "container runAsUser overrides the pod's runAsUser 0", req: create(pod("default", "web", set("securityContext.runAsUser", 0), set("containers.0.securityContext.runAsUser", 1000))), allowed: true},
		{
			name: "readOnlyRootFilesystem false is a warning", req: create(pod("default", "web", set("containers.0.securityContext.readOnlyRootFilesystem", false))),
			allowed: true, violations: rules(readOnlyRootFilesystem),
			warnings: []string{`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=false" in container(s) "app" (log)`},
		},
		{
			name: "missing memory limit is a warning", req: create(pod("default", "web", set("containers.0.resources.limits", nil))),
			allowed: true, violations: rules(resources),
			warnings: []string{`resources violates rule resources "limits.memory missing" in container(s) "app" (log)`},
		},
		{name: "cpu limits are not required cluster-wide", req: create(pod("default", "web", set("containers.0.resources.limits.cpu", nil), set("containers.0.resources.requests.memory", nil))), allowed: true},
		{
			name:    "init container without resources is a warning naming it",
			req:     create(pod("default", "web", appendTo("initContainers", with(compliantContainer("migrate", webImage), "resources", nil)))),
			allowed: true, violations: rules(resources),
			messages: []string{`resources violates rule resources "requests.cpu missing" in container(s) "migrate" (log)`},
		},

		// Image rules.
		{
			name: "registry suffix bypass myregistry.io.evil.com is denied", req: create(pod("default", "web", image("myregistry.io.evil.com/app:1"))),
			violations: rules(allowedRegistries, digestPinning),
			messages:   []string{`image violates rule allowedRegistries "myregistry.io.evil.com/app:1" in container(s) "app" (block)`},
		},
		{name: "registry path bypass evil.com/myregistry.io is denied", req: create(pod("default", "web", image("evil.com/myregistry.io/app:1"))), violations: rules(allowedRegistries, digestPinning)},
		{name: "organisation prefix bypass ghcr.io/acme-evil is denied", req: create(pod("default", "web", image("ghcr.io/acme-evil/x:1"))), violations: rules(allowedRegistries, digestPinning)},
		{
			// distribution/reference (and so every runtime) rejects "..": a
			// reference that does not parse lies in no registry (fixed in 23ed124).
			name: "dot-dot path docker.io/library/../evil/x is denied", req: create(pod("default", "web", image("docker.io/library/../evil/x:1"))),
			violations: rules(allowedRegistries, digestPinning),
		},
		{name: "registry host with a port is another registry", req: create(pod("default", "web", image("myregistry.io:5000/app:1"))), violations: rules(allowedRegistries, digestPinning)},
		{name: "Docker Hub user image docker.io/evil/nginx is denied", req: create(pod("default", "web", image("docker.io/evil/nginx:1.27"))), violations: rules(allowedRegistries, digestPinning)},
		{name: "index.docker.io/evil is Docker Hub's evil, not library", req: create(pod("default", "web", image("index.docker.io/evil/nginx:1.27"))), violations: rules(allowedRegistries, digestPinning)},
		{name: "myregistry.io/team/app is allowed", req: create(pod("default", "web", image("myregistry.io/team/app:2.0"+digest))), allowed: true},
		{name: "upper-case registry host is the same registry", req: create(pod("default", "web", image("GHCR.IO/acme/web:1.4.2"+digest))), allowed: true},
		{
			name: "short name nginx is docker.io/library/nginx", req: create(pod("default", "web", image("nginx:1.27"))),
			allowed: true, violations: rules(digestPinning),
			warnings: []string{`image violates rule digestPinning "nginx:1.27" in container(s) "app" (log)`},
		},
		{name: "index.docker.io/library/nginx is allowed as docker.io/library", req: create(pod("default", "web", image("index.docker.io/library/nginx:1.27"))), allowed: true, violations: rules(digestPinning)},
		{name: "miner image in docker.io/library is denied by imageName", req: create(pod("default", "web", image("coinminer:1.0"))), violations: rules(imageName, digestPinning)},
		{
			name: "xmrig anywhere in the name is denied", req: create(pod("default", "web", image("ghcr.io/acme/tools/xmrig:6.21"+digest))),
			violations: rules(imageName),
			messages:   []string{`image violates rule imageName "ghcr.io/acme/tools/xmrig:6.21` + digest + `" in container(s) "app" (block)`},
		},
		{name: "a miner outside docker.io/library is not matched by the glob", req: create(pod("default", "web", image("ghcr.io/acme/coinminer-detector:1.0"+digest))), allowed: true},
		{name: "release-candidate tag is a warning", req: create(pod("default", "web", image("ghcr.io/acme/web:1.5.0-rc1"+digest))), allowed: true, violations: rules(imageTag)},
		{name: "dev tag is a warning", req: create(pod("default", "web", image("ghcr.io/acme/web:dev"+digest))), allowed: true, violations: rules(imageTag)},
		{
			name: "image without a tag runs latest and is denied", req: create(pod("default", "web", image("ghcr.io/acme/web"))),
			violations: rules(latestTag, digestPinning),
			messages:   []string{`image violates rule latestTag "ghcr.io/acme/web" in container(s) "app" (block)`},
		},
		{name: "explicit latest tag is denied", req: create(pod("default", "web", image("ghcr.io/acme/web:latest"))), violations: rules(latestTag, digestPinning)},
		{name: "digest-only image has no tag to judge", req: create(pod("default", "web", image("ghcr.io/acme/web"+digest))), allowed: true},
		{
			name: "tag without digest is a warning cluster-wide", req: create(pod("default", "web", image("ghcr.io/acme/web:1.4.2"))),
			allowed: true, violations: rules(digestPinning),
			warnings: []string{`image violates rule digestPinning "ghcr.io/acme/web:1.4.2" in container(s) "app" (log)`},
		},
		{
			name:    "one violation lists every container that breaks it",
			req:     create(pod("default", "web", image("ghcr.io/acme/web:1.4.2"), appendTo("containers", compliantContainer("worker", "ghcr.io/acme/web:1.4.2")))),
			allowed: true, violations: rules(digestPinning),
			warnings: []string{`image violates rule digestPinning "ghcr.io/acme/web:1.4.2" in container(s) "app", "worker" (log)`},
		},

		// Namespace precedence: payments is stricter, ci relaxes.
		{
			name: "namespace payments overrides cluster-wide digest pinning to block", req: create(pod("payments", "payments-api", image("ghcr.io/acme/payments/api:2.3.1"))),
			violations: rules(digestPinning),
			messages:   []string{`image violates rule digestPinning "ghcr.io/acme/payments/api:2.3.1" in container(s) "app" (block)`},
		},
		{name: "namespace payments only admits ghcr.io/acme/payments", req: create(pod("payments", "payments-api", image(webImage))), violations: rules(allowedRegistries)},
		{name: "namespace payments denies ghcr.io/acme/payments-evil", req: create(pod("payments", "payments-api", image("ghcr.io/acme/payments-evil/api:1"+digest))), violations: rules(allowedRegistries)},
		{
			name: "namespace payments blocks root", req: create(pod("payments", "payments-api", set("securityContext.runAsUser", 0))),
			violations: rules(runAsRoot, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule runAsRoot "runAsUser=0" in container(s) "app" (block)`},
		},
		{name: "namespace payments blocks a writable root file system", req: create(pod("payments", "payments-api", set("containers.0.securityContext.readOnlyRootFilesystem", false))), violations: rules(readOnlyRootFilesystem)},
		{
			name: "namespace payments requires all four resources", req: create(pod("payments", "payments-api", set("containers.0.resources.limits.cpu", nil))),
			violations: rules(resources),
			messages:   []string{`resources violates rule resources "limits.cpu missing" in container(s) "app" (block)`},
		},
		{
			name: "ci relaxes latestTag to a warning", req: create(pod("ci", "builder", image("ghcr.io/acme/builder"))),
			allowed: true, violations: rules(latestTag, digestPinning),
			warnings: []string{
				`image violates rule digestPinning "ghcr.io/acme/builder" in container(s) "app" (log)`,
				`image violates rule latestTag "ghcr.io/acme/builder" in container(s) "app" (log)`,
			},
		},
		{name: "ci-runners relaxes latestTag too", req: create(pod("ci-runners", "runner", image("ghcr.io/acme/runner:latest"))), allowed: true, violations: rules(latestTag, digestPinning)},
		{name: "cluster-wide blocks still hold in ci", req: create(pod("ci", "builder", set("containers.0.securityContext.privileged", true))), violations: rules(privileged, podSecurityStandards)},
		{name: "namespace payments-staging is not payments", req: create(pod("payments-staging", "payments-api", image("ghcr.io/acme/payments/api:2.3.1"))), allowed: true, violations: rules(digestPinning)},
		{name: "namespace of the request wins over the manifest's", req: func() *bundles.Request {
			r := create(pod("default", "web", image("ghcr.io/acme/web:1.4.2")))
			r.Namespace = "payments"
			return r
		}(), violations: rules(allowedRegistries, digestPinning)},

		// kubectl access.
		{
			name: "kubectl exec by a developer is denied", req: connect("default", "exec", "app", developer),
			violations: rules(kubectlAccess),
			messages:   []string{`kubectl violates rule kubectlAccess "exec" in container(s) "app" (block)`},
		},
		{name: "kubectl exec by acme:sre is allowed", req: connect("default", "exec", "app", sre), allowed: true},
		{name: "kubectl exec without a container names the pod", req: connect("default", "exec", "", developer), violations: rules(kubectlAccess), messages: []string{`kubectl violates rule kubectlAccess "exec" (block)`}},
		{name: "kubectl attach by a developer is denied", req: connect("default", "attach", "app", developer), violations: rules(kubectlAccess), messages: []string{`kubectl violates rule kubectlAccess "attach" in container(s) "app" (block)`}},
		{name: "kubectl port-forward by a developer is denied", req: connect("default", "portforward", "", developer), violations: rules(kubectlAccess), messages: []string{`kubectl violates rule kubectlAccess "portForward" (block)`}},
		{name: "kubectl port-forward by acme:sre is allowed", req: connect("default", "portforward", "", sre), allowed: true},
		{name: "ci lets acme:ci-admins exec", req: connect("ci", "exec", "app", ciAdmin), allowed: true},
		{name: "cluster-wide does not let acme:ci-admins exec", req: connect("default", "exec", "app", ciAdmin), violations: rules(kubectlAccess)},
		{name: "ci still denies developers", req: connect("ci-runners", "attach", "app", developer), violations: rules(kubectlAccess)},
		{name: "payments inherits acme:sre through the merge key", req: connect("payments", "exec", "app", sre), allowed: true},
		{name: "payments does not let acme:ci-admins exec", req: connect("payments", "exec", "app", ciAdmin), violations: rules(kubectlAccess)},
		{name: "kubectl exec in palisade-system is never acted on", req: connect("palisade-system", "exec", "controller", developer), allowed: true},
		{
			name: "ephemeral container added by a developer is denied", req: debug(webPod, debugger("debugger"), developer),
			violations: rules(kubectlAccess, allowPrivilegeEscalation, readOnlyRootFilesystem, digestPinning),
			messages:   []string{`kubectl violates rule kubectlAccess "ephemeralContainers" in container(s) "debugger" (block)`},
		},
		{
			name: "ephemeral container added by acme:sre is allowed with warnings and needs no resources", req: debug(webPod, debugger("debugger"), sre),
			allowed: true, violations: rules(allowPrivilegeEscalation, readOnlyRootFilesystem, digestPinning),
			warnings: []string{
				`containerSecurityContext violates rule allowPrivilegeEscalation "allowPrivilegeEscalation=unset" in container(s) "debugger" (log)`,
				`containerSecurityContext violates rule readOnlyRootFilesystem "readOnlyRootFilesystem=unset" in container(s) "debugger" (log)`,
				`image violates rule digestPinning "busybox:1.36" in container(s) "debugger" (log)`,
			},
		},
		{
			name: "only the ephemeral container being added is kubectl access",
			req: func() *bundles.Request {
				old := clone(webPod)
				old["spec"].(obj)["ephemeralContainers"] = list{debugger("debugger-1")}
				return debug(old, debugger("debugger-2"), developer)
			}(),
			violations: rules(kubectlAccess, allowPrivilegeEscalation, readOnlyRootFilesystem, digestPinning),
			messages:   []string{`kubectl violates rule kubectlAccess "ephemeralContainers" in container(s) "debugger-2" (block)`},
		},
		{name: "privileged ephemeral container is denied even for acme:sre", req: debug(webPod, with(debugger("debugger"), "securityContext", obj{"privileged": true}), sre), violations: rules(privileged, podSecurityStandards, allowPrivilegeEscalation, readOnlyRootFilesystem, digestPinning)},
		{
			// The implicit system-image exception is about what runs, not
			// who gets in: naming a Palisade image must not turn kubectl
			// debug into an exception to kubectlAccess (fixed in 23ed124).
			name: "ephemeral container with a Palisade image is still kubectl access", req: debug(webPod, with(debugger("debugger"), "image", systemImage), developer),
			violations: rules(kubectlAccess),
		},

		// Exceptions.
		{name: "node_exporter exception admits node-exporter in monitoring", req: create(nodeExporter("monitoring")), allowed: true},
		{
			name: "node_exporter exception does not apply in default", req: create(nodeExporter("default")),
			violations: rules(hostNamespaces, hostPorts, hostPathVolumes, blockedHostPaths, podSecurityStandards),
		},
		{
			name:       "node_exporter exception needs every container to match for pod-level rules",
			req:        create(nodeExporter("monitoring", appendTo("containers", compliantContainer("kube-rbac-proxy", sidecarImage)))),
			violations: rules(hostNamespaces, podSecurityStandards),
		},
		{name: "node_exporter exception needs the node-exporter image", req: create(nodeExporter("monitoring", image(webImage))), violations: rules(hostNamespaces, hostPorts, hostPathVolumes, blockedHostPaths, podSecurityStandards)},
		{name: "node_exporter exception does not cover privileged", req: create(nodeExporter("monitoring", set("containers.0.securityContext.privileged", true))), violations: rules(privileged)},
		{name: "live exception applies: legacy_root", req: create(pod("default", "legacy-billing", legacyBilling...)), allowed: true},
		{name: "live exception applies through its last day", req: create(pod("default", "legacy-billing", legacyBilling...)), now: at("2026-12-31T23:59:59Z"), allowed: true},
		{
			name: "expired exception no longer applies: legacy_root from 2027-01-01", req: create(pod("default", "legacy-billing", legacyBilling...)), now: at("2027-01-01T00:00:00Z"),
			allowed: true, violations: rules(runAsRoot),
		},
		{name: "legacy_root needs the app=legacy-billing label", req: create(pod("default", "billing", asRoot...)), allowed: true, violations: rules(runAsRoot)},
		{name: "Deployment pod template labels select legacy_root", req: create(workload("Deployment", "default", "legacy-billing", legacyBilling...)), allowed: true},
		{name: "CronJob pod template labels select legacy_root", req: create(workload("CronJob", "default", "legacy-billing", legacyBilling...)), allowed: true},
		{name: "payments does not inherit the cluster-wide legacy_root exception", req: create(pod("payments", "legacy-billing", legacyBilling...)), violations: rules(runAsRoot, podSecurityStandards)},
		{
			name: "expired exception no longer applies: old_debug_tools", req: create(pod("default", "debug-tools", debugTools...)),
			violations: rules(privileged, podSecurityStandards, allowPrivilegeEscalation, readOnlyRootFilesystem),
			messages:   []string{`containerSecurityContext violates rule privileged "true" in container(s) "app" (block)`},
		},
		{
			name: "old_debug_tools excepted privileged before its expiry, not Pod Security", req: create(pod("default", "debug-tools", debugTools...)), now: at("2025-06-30T12:00:00Z"),
			violations: rules(podSecurityStandards, allowPrivilegeEscalation, readOnlyRootFilesystem),
		},
		{
			name: "buildkit exception covers its two rules but docker.io/moby is no allowed registry",
			req: create(pod("ci", "buildkitd", image("moby/buildkit:v0.13.2"+digest), set("serviceAccountName", "buildkit"),
				set("containers.0.securityContext.allowPrivilegeEscalation", true), set("containers.0.securityContext.readOnlyRootFilesystem", false))),
			violations: rules(allowedRegistries),
		},
		{
			name: "buildkit exception needs the buildkit service account",
			req: create(pod("ci", "buildkitd", image("moby/buildkit:v0.13.2"+digest),
				set("containers.0.securityContext.allowPrivilegeEscalation", true), set("containers.0.securityContext.readOnlyRootFilesystem", false))),
			violations: rules(allowedRegistries, allowPrivilegeEscalation, readOnlyRootFilesystem),
		},
		{name: "Palisade's own image is an implicit exception", req: create(pod("default", "palisade-sensor", image(systemImage), set("hostPID", true), set("containers.0.securityContext", obj{"privileged": true}))), allowed: true},
		{name: "palisade-system namespace is never acted on", req: create(busybox("palisade-system")), allowed: true},

		// Workload kinds and operations.
		{
			name: "privileged Deployment is denied naming its container", req: create(workload("Deployment", "default", "web", set("containers.0.securityContext.privileged", true))),
			violations: rules(privileged, podSecurityStandards),
			messages:   []string{`containerSecurityContext violates rule privileged "true" in container(s) "app" (block)`},
		},
		{name: "ReplicaSet from an unknown registry is denied", req: create(workload("ReplicaSet", "default", "web", image("quay.io/evil/app:1"+digest))), violations: rules(allowedRegistries)},
		{name: "StatefulSet with a blocked host path is denied", req: create(workload("StatefulSet", "default", "db", hostPath("kubelet", "/var/lib/kubelet/pods", true))), violations: rules(blockedHostPaths, hostPathVolumes, podSecurityStandards)},
		{name: "DaemonSet adding SYS_ADMIN is denied", req: create(workload("DaemonSet", "default", "agent", set("containers.0.securityContext.capabilities.add", list{"SYS_ADMIN"}))), violations: rules(capabilities, podSecurityStandards)},
		{name: "Job with the latest tag is denied", req: create(workload("Job", "default", "migrate", image("ghcr.io/acme/migrate:latest"))), violations: rules(latestTag, digestPinning)},
		{name: "Job in ci with the latest tag is allowed with a warning", req: create(workload("Job", "ci", "build", image("ghcr.io/acme/builder:latest"))), allowed: true, violations: rules(latestTag, digestPinning)},
		{name: "CronJob with hostNetwork is denied", req: create(workload("CronJob", "default", "report", set("hostNetwork", true))), violations: rules(hostNamespaces, podSecurityStandards)},
		{name: "CronJob in payments without a digest is denied", req: create(workload("CronJob", "payments", "settle", image("ghcr.io/acme/payments/settle:1.0"))), violations: rules(digestPinning)},
		{name: "UPDATE of a Deployment's template is checked", req: func() *bundles.Request {
			r := update(workload("Deployment", "default", "web", set("containers.0.securityContext.privileged", true)))
			r.OldObject = workload("Deployment", "default", "web")
			return r
		}(), violations: rules(privileged, podSecurityStandards)},
		{name: "UPDATE that leaves the template as it was (scaling) is allowed", req: func() *bundles.Request {
			r := update(workload("Deployment", "default", "web", set("containers.0.securityContext.privileged", true)))
			r.Object["spec"].(obj)["replicas"] = 0
			return r
		}(), allowed: true},
		{name: "DELETE of a privileged pod is allowed", req: func() *bundles.Request {
			r := request("DELETE", "", busybox("default"), developer)
			r.OldObject, r.Object = r.Object, nil
			return r
		}(), allowed: true},
		{name: "pod status update is not re-checked", req: func() *bundles.Request {
			r := update(busybox("default"))
			r.SubResource = "status"
			return r
		}(), allowed: true},
		{name: "a ConfigMap is no workload", req: create(obj{"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj{"name": "cfg", "namespace": "default"}, "data": obj{"image": "evil.com/x:latest"}}), allowed: true},

		// Audit mode downgrades every block to log.
		{
			name: "audit mode allows the privileged busybox pod with a warning", req: create(busybox("default")), audit: true,
			allowed:    true,
			violations: rules(privileged, podSecurityStandards, automountServiceAccountToken, allowPrivilegeEscalation, readOnlyRootFilesystem, runAsRoot, digestPinning, resources),
			warnings: sortedCopy(append([]string{
				`containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (log)`,
				`pss.baseline violates rule podSecurityStandards "privileged: privileged=true" in container(s) "busybox-container" (log)`,
			}, busyboxWarnings...)),
		},
		{
			name: "audit mode allows kubectl exec with a warning", req: connect("payments", "exec", "app", developer), audit: true,
			allowed: true, violations: rules(kubectlAccess),
			warnings: []string{`kubectl violates rule kubectlAccess "exec" in container(s) "app" (log)`},
		},
		{name: "audit mode allows a registry bypass with a warning", req: create(pod("payments", "payments-api", image("ghcr.io/acme/payments.evil.com/api:1"+digest))), audit: true, allowed: true, violations: rules(allowedRegistries)},
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func ruleSet(d *bundles.Decision, withAction bool) []string {
	var got []string
	for _, v := range d.Violations {
		if withAction {
			got = append(got, v.Rule+":"+v.Action)
		} else {
			got = append(got, v.Rule)
		}
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func describe(d *bundles.Decision) string {
	var b strings.Builder
	for _, v := range d.Violations {
		b.WriteString("\n\t" + v.Message)
	}
	return b.String()
}

func TestAdmissionDecisions(t *testing.T) {
	prod, audit := mustEngine(t, prodEngine), mustEngine(t, auditEngine)
	cases := admissionCases()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case %q", tc.name)
		}
		seen[tc.name] = true
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng := prod
			if tc.audit {
				eng = audit
			}
			at := tc.now
			if at.IsZero() {
				at = now
			}
			d, err := eng.Admission(t.Context(), tc.req, bundles.Facts{Now: at})
			if err != nil {
				t.Fatalf("Admission: %v", err)
			}
			if d.Revision != "test" {
				t.Errorf("revision %q, want test", d.Revision)
			}
			if d.Allowed != tc.allowed {
				t.Errorf("allowed %t, want %t%s", d.Allowed, tc.allowed, describe(d))
			}
			want := sortedCopy(tc.violations)
			if got := ruleSet(d, false); !slices.Equal(got, want) {
				t.Errorf("violated rules %q, want %q%s", got, want, describe(d))
			}
			for _, m := range tc.messages {
				if !slices.ContainsFunc(d.Violations, func(v bundles.Violation) bool { return v.Message == m }) {
					t.Errorf("no violation says\n\t%s\ngot:%s", m, describe(d))
				}
			}
			if tc.warnings != nil && !slices.Equal(d.Warnings, tc.warnings) {
				t.Errorf("warnings:\n\t%s\nwant:\n\t%s", strings.Join(d.Warnings, "\n\t"), strings.Join(tc.warnings, "\n\t"))
			}
			// Warnings are exactly the messages of the log violations.
			var logs []string
			for _, v := range d.Violations {
				if v.Action == policy.ActionLog {
					logs = append(logs, v.Message)
				}
			}
			slices.Sort(logs)
			if !slices.Equal(sortedCopy(d.Warnings), slices.Compact(logs)) {
				t.Errorf("warnings %q are not the log violations %q", d.Warnings, logs)
			}
		})
	}
	if len(cases) < 70 {
		t.Errorf("%d cases, want at least 70", len(cases))
	}
}

// TestAdmissionWithoutEvaluationTime: a caller that gathers no time
// (Facts{}) must not break admission. rego/doc.go and lib/subject say an
// undefined time makes expiring exceptions no longer apply (fail closed).
//
// Facts.value once sent the zero time.Time as "0001-01-01T00:00:00Z",
// which time.parse_rfc3339_ns refuses ("time outside of valid range"):
// with strict builtin errors every decision that reached an expiring
// exception failed (fixed in 23ed124).
func TestAdmissionWithoutEvaluationTime(t *testing.T) {
	eng := mustEngine(t, prodEngine)
	d, err := eng.Admission(t.Context(), create(pod("default", "legacy-billing", label("app", "legacy-billing"), set("securityContext.runAsNonRoot", nil), set("securityContext.runAsUser", 0))), bundles.Facts{})
	if err != nil {
		t.Fatalf("Admission without a time: %v", err)
	}
	if got := ruleSet(d, false); !slices.Equal(got, []string{runAsRoot}) {
		t.Errorf("violated rules %q, want [runAsRoot] (expiring exception legacy_root must not apply without a time)%s", got, describe(d))
	}
}

// TestImageExceptionDoesNotGrantKubectlAccess: an exception's images say
// what may run, and whoever adds an ephemeral container chooses its image.
// An exception for images under ghcr.io/acme/tools/ still covers pods that
// run those images, but must not let a developer kubectl debug any pod of
// the namespace by naming such an image (as 23ed124 decided for the
// implicit system-image exception).
func TestImageExceptionDoesNotGrantKubectlAccess(t *testing.T) {
	eng := mustEngine(t, toolsEngine)
	tools := "ghcr.io/acme/tools/shell:1.0" + digest
	for _, tc := range []struct {
		name       string
		req        *bundles.Request
		allowed    bool
		violations []string
	}{
		{
			name:    "the exception covers a pod that runs a tools image",
			req:     create(pod("default", "shell", image(tools), set("containers.0.securityContext.readOnlyRootFilesystem", false), set("automountServiceAccountToken", nil))),
			allowed: true,
		},
		{
			name:       "the exception is for default only",
			req:        create(pod("monitoring", "shell", image(tools), set("containers.0.securityContext.readOnlyRootFilesystem", false))),
			allowed:    true,
			violations: rules(readOnlyRootFilesystem),
		},
		{
			name:       "kubectl debug with a tools image is still kubectl access",
			req:        debug(pod("default", "web"), with(debugger("debugger"), "image", tools), developer),
			violations: rules(kubectlAccess),
		},
		{
			name:    "acme:sre may kubectl debug with a tools image",
			req:     debug(pod("default", "web"), with(debugger("debugger"), "image", tools), sre),
			allowed: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := eng.Admission(t.Context(), tc.req, bundles.Facts{Now: now})
			if err != nil {
				t.Fatalf("Admission: %v", err)
			}
			if d.Allowed != tc.allowed {
				t.Errorf("allowed %t, want %t%s", d.Allowed, tc.allowed, describe(d))
			}
			if got, want := ruleSet(d, false), sortedCopy(tc.violations); !slices.Equal(got, want) {
				t.Errorf("violated rules %q, want %q%s", got, want, describe(d))
			}
		})
	}
}

type continuousCase struct {
	name  string
	pod   obj
	audit bool
	now   time.Time
	// violations are the exact "rule:action" pairs.
	violations []string
	messages   []string
}

func continuousCases() []continuousCase {
	return []continuousCase{
		{name: "compliant pod has no continuous violations", pod: pod("default", "web")},
		{
			name: "privileged busybox pod is terminated", pod: busybox("default"),
			violations: []string{"privileged:terminate", "runAsRoot:log"},
			messages:   []string{`containerSecurityContext violates rule privileged "true" in container(s) "busybox-container" (terminate)`},
		},
		{name: "hostNetwork pod is isolated", pod: pod("default", "web", set("hostNetwork", true)), violations: []string{"hostNamespaces:isolate"}},
		{name: "blocked host path is isolated with the deployment tab's paths", pod: pod("default", "web", hostPath("docker", "/var/run/docker.sock", true)), violations: []string{"blockedHostPaths:isolate"}},
		{name: "capabilities are logged with the deployment tab's preset", pod: pod("default", "web", set("containers.0.securityContext.capabilities.add", list{"SYS_ADMIN"})), violations: []string{"capabilities:log"}},
		{name: "latest tag is logged", pod: pod("default", "web", image("ghcr.io/acme/web")), violations: []string{"latestTag:log"}},
		{name: "rules only in the deployment tab are not re-checked", pod: pod("default", "web", image("quay.io/evil/x:1"), set("automountServiceAccountToken", nil))},
		{name: "payments terminates root", pod: pod("payments", "payments-api", set("securityContext.runAsUser", 0)), violations: []string{"runAsRoot:terminate"}},
		{name: "payments logs a missing digest", pod: pod("payments", "payments-api", image("ghcr.io/acme/payments/api:2.3.1")), violations: []string{"digestPinning:log"}},
		{name: "payments re-checks only its own continuous rules", pod: pod("payments", "payments-api", set("hostNetwork", true))},
		// prod.yaml gives ci no continuous tab, and a namespaced definition
		// replaces the cluster-wide one as a whole: nothing is re-checked.
		{name: "ci has no continuous rules", pod: busybox("ci")},
		{name: "expired old_debug_tools: privileged debug pod is terminated", pod: pod("default", "debug-tools", label("app", "debug-tools"), set("containers.0.securityContext.privileged", true)), violations: []string{"privileged:terminate"}},
		{name: "live old_debug_tools: privileged debug pod is left alone", pod: pod("default", "debug-tools", label("app", "debug-tools"), set("containers.0.securityContext.privileged", true)), now: at("2025-06-01T00:00:00Z")},
		{name: "legacy_root live: root is not logged", pod: pod("default", "legacy-billing", label("app", "legacy-billing"), set("securityContext.runAsNonRoot", nil), set("securityContext.runAsUser", 0))},
		{name: "legacy_root expired: root is logged", pod: pod("default", "legacy-billing", label("app", "legacy-billing"), set("securityContext.runAsNonRoot", nil), set("securityContext.runAsUser", 0)), now: at("2027-01-02T00:00:00Z"), violations: []string{"runAsRoot:log"}},
		{name: "node_exporter in monitoring is not isolated", pod: pod("monitoring", "node-exporter", image(nodeExporterImage), set("hostNetwork", true), set("hostPID", true), hostPath("proc", "/proc", true))},
		{name: "node-exporter in default is isolated", pod: pod("default", "node-exporter", image(nodeExporterImage), set("hostNetwork", true), set("hostPID", true), hostPath("proc", "/proc", true)), violations: []string{"blockedHostPaths:isolate", "hostNamespaces:isolate"}},
		{name: "audit mode only logs the privileged pod", pod: busybox("default"), audit: true, violations: []string{"privileged:log", "runAsRoot:log"}},
	}
}

func TestContinuousDecisions(t *testing.T) {
	prod, audit := mustEngine(t, prodEngine), mustEngine(t, auditEngine)
	for _, tc := range continuousCases() {
		t.Run(tc.name, func(t *testing.T) {
			eng := prod
			if tc.audit {
				eng = audit
			}
			at := tc.now
			if at.IsZero() {
				at = now
			}
			d, err := eng.Continuous(t.Context(), tc.pod, bundles.Facts{Now: at})
			if err != nil {
				t.Fatalf("Continuous: %v", err)
			}
			want := sortedCopy(tc.violations)
			if got := ruleSet(d, true); !slices.Equal(got, want) {
				t.Errorf("violations %q, want %q%s", got, want, describe(d))
			}
			for _, m := range tc.messages {
				if !slices.ContainsFunc(d.Violations, func(v bundles.Violation) bool { return v.Message == m }) {
					t.Errorf("no violation says\n\t%s\ngot:%s", m, describe(d))
				}
			}
			if len(d.Warnings) != 0 {
				t.Errorf("continuous decision has warnings %q", d.Warnings)
			}
		})
	}
}

// typicalPod is a Deployment's pod as the API server admits it: an app and
// a log shipper, a few log findings (no digest on the shipper, token
// automounted).
func typicalPod() obj {
	p := workload("Deployment", "default", "web",
		appendTo("containers", with(compliantContainer("log-shipper", "ghcr.io/acme/log-shipper:3.1.0"), "env", list{obj{"name": "LEVEL", "value": "info"}})),
		set("automountServiceAccountToken", nil),
		set("serviceAccountName", "web"),
	)
	tmpl := p["spec"].(obj)["template"].(obj)
	tmpl["metadata"].(obj)["labels"].(obj)["pod-template-hash"] = "5d8f7c9b6"
	return p
}

// BenchmarkAdmissionDecision is one admission decision as the webhook
// makes it (the default evaluator, irvm), input conversion included:
// with the garbage collector as the serving commands set it
// (internal/gctune) and with Go's default.
func BenchmarkAdmissionDecision(b *testing.B) {
	withServingGC(b, benchEngine(b, bundles.EvaluatorIR), benchAdmission)
}

// BenchmarkContinuousDecision is one continuous decision as the scanner
// makes it.
func BenchmarkContinuousDecision(b *testing.B) {
	withServingGC(b, benchEngine(b, bundles.EvaluatorIR), benchContinuous)
}

// withServingGC runs bench at gctune's GOGC and at Go's default.
func withServingGC(b *testing.B, eng *bundles.Engine, bench func(*testing.B, *bundles.Engine)) {
	for _, gogc := range []int{gctune.Percent, 100} {
		b.Run(fmt.Sprintf("gogc=%d", gogc), func(b *testing.B) {
			defer rtdebug.SetGCPercent(rtdebug.SetGCPercent(gogc))
			bench(b, eng)
		})
	}
}

// BenchmarkEvaluators compares the two evaluators on the same decisions
// in one run (Go's default GOGC).
func BenchmarkEvaluators(b *testing.B) {
	for _, ev := range []string{bundles.EvaluatorIR, bundles.EvaluatorTopdown} {
		b.Run("admission/"+ev, func(b *testing.B) { benchAdmission(b, benchEngine(b, ev)) })
		b.Run("continuous/"+ev, func(b *testing.B) { benchContinuous(b, benchEngine(b, ev)) })
	}
}

func benchAdmission(b *testing.B, eng *bundles.Engine) {
	req := create(typicalPod())
	facts := bundles.Facts{Now: now}
	ctx := context.Background()
	d, err := eng.Admission(ctx, req, facts)
	if err != nil || !d.Allowed || len(d.Violations) != 2 {
		b.Fatalf("unexpected decision %+v, %v", d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eng.Admission(ctx, req, facts); err != nil {
			b.Fatal(err)
		}
	}
}

func benchContinuous(b *testing.B, eng *bundles.Engine) {
	p := pod("default", "web", appendTo("containers", compliantContainer("log-shipper", "ghcr.io/acme/log-shipper:3.1.0")))
	facts := bundles.Facts{Now: now}
	ctx := context.Background()
	if _, err := eng.Continuous(ctx, p, facts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eng.Continuous(ctx, p, facts); err != nil {
			b.Fatal(err)
		}
	}
}

// The schedules come from the continuous tab of each definition: the
// cluster-wide one, and the namespaced ones for the namespaces they list.
func TestSchedules(t *testing.T) {
	s := mustEngine(t, prodEngine).Schedules()
	if s.ClusterWide != "@every 10m" {
		t.Errorf("cluster-wide schedule %q, want @every 10m", s.ClusterWide)
	}
	for ns, want := range map[string]string{"default": "@every 10m", "payments": policy.DefaultSchedule, "ci": policy.DefaultSchedule} {
		if got := s.For(ns); got != want {
			t.Errorf("schedule of %s: %q, want %q", ns, got, want)
		}
	}
	if got := (bundles.Schedules{}).For("x"); got != policy.DefaultSchedule {
		t.Errorf("zero Schedules: %q, want the default", got)
	}
}

// The engine asks for what the verification rules need (Wanted), and
// decides on the facts it is given.
func TestVerificationFacts(t *testing.T) {
	eng := mustEngine(t, prodEngine)
	if !eng.Verifies() {
		t.Fatal("Verifies: false for a bundle with imageSignature rules")
	}
	if _, ok := eng.Attestors()["acme_release"]; !ok {
		t.Fatalf("attestors %v: acme_release missing", eng.Attestors())
	}
	const release = "ghcr.io/acme/release/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	req := create(workload("Deployment", "default", "web",
		appendTo("containers", compliantContainer("release", release)),
	))
	ctx := context.Background()
	input, err := eng.AdmissionInput(req, bundles.Facts{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	wanted, err := eng.Wanted(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{release: {"acme_release", "acme_scanner"}}; !reflect.DeepEqual(wanted, want) {
		t.Fatalf("wanted %v, want %v", wanted, want)
	}
	for _, tc := range []struct {
		name     string
		facts    map[string]any
		allowed  bool
		violates string
	}{
		{"signed", map[string]any{release: map[string]any{"digest": "sha256:01", "signatures": map[string]any{"acme_release": map[string]any{"verified": true}}}}, true, ""},
		{"unsigned", map[string]any{release: map[string]any{"digest": "sha256:01", "signatures": map[string]any{"acme_release": map[string]any{"verified": false, "reason": "no signature"}}}}, false,
			`image violates rule imageSignature.release "` + release + ` is not signed by acme_release" in container(s) "release" (block)`},
		{"registry down", map[string]any{release: map[string]any{"error": "registry unreachable"}}, false, // the scan rule only logs

			`image violates rule imageSignature.release "` + release + ` cannot be verified: registry unreachable" in container(s) "release" (block)`},
		{"no facts", nil, false,
			`image violates rule imageSignature.release "` + release + ` cannot be verified: no verification facts were gathered" in container(s) "release" (block)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := eng.Admission(ctx, req, bundles.Facts{Now: now, Verification: tc.facts})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.allowed {
				t.Errorf("allowed %v, want %v: %+v", d.Allowed, tc.allowed, d.Violations)
			}
			var blocks []string
			for _, v := range d.Violations {
				if v.Action == "block" {
					blocks = append(blocks, v.Message)
				}
			}
			if tc.violates != "" && !slices.Contains(blocks, tc.violates) {
				t.Errorf("violations %q, want %q", blocks, tc.violates)
			}
		})
	}
	// A pod no rule selects asks for nothing.
	other, err := eng.AdmissionInput(create(typicalPod()), bundles.Facts{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if wanted, err := eng.Wanted(ctx, other); err != nil || len(wanted) != 0 {
		t.Errorf("wanted for a pod without release images: %v, %v", wanted, err)
	}
}

// fakeGatherer records what it was asked and answers with fixed facts.
type fakeGatherer struct {
	facts map[string]any
	asked []map[string][]string
	ns    string
	pulls []string
}

func (g *fakeGatherer) Gather(_ context.Context, _ *bundles.Engine, wanted map[string][]string, namespace string, pullSecrets []string) map[string]any {
	g.asked, g.ns, g.pulls = append(g.asked, wanted), namespace, pullSecrets
	return g.facts
}

// AdmissionVerified asks the gatherer for what the rules want, once, and
// decides on its answer; a request no rule selects asks nothing.
func TestAdmissionVerifiedGathersWhatTheRulesWant(t *testing.T) {
	eng := mustEngine(t, prodEngine)
	const release = "ghcr.io/acme/release/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	req := create(workload("Deployment", "default", "web", appendTo("containers", compliantContainer("release", release))))
	g := &fakeGatherer{facts: map[string]any{release: map[string]any{"signatures": map[string]any{"acme_release": map[string]any{"verified": false}}}}}
	v := bundles.Verification{Gatherer: g, Namespace: "default", PullSecrets: []string{"regcred"}}
	d, err := eng.AdmissionVerified(context.Background(), req, bundles.Facts{Now: now}, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.asked) != 1 || !reflect.DeepEqual(g.asked[0], map[string][]string{release: {"acme_release", "acme_scanner"}}) || g.ns != "default" || !slices.Equal(g.pulls, []string{"regcred"}) {
		t.Fatalf("gatherer asked %v in %q with %v", g.asked, g.ns, g.pulls)
	}
	if d.Allowed {
		t.Errorf("unsigned release image allowed: %+v", d.Violations)
	}
	g.asked = nil
	if _, err := eng.AdmissionVerified(context.Background(), create(typicalPod()), bundles.Facts{Now: now}, v); err != nil || len(g.asked) != 0 {
		t.Errorf("a pod no rule selects: asked %v, err %v", g.asked, err)
	}
}

// BenchmarkNewEngine is activating the prod bundle: compiling it for
// topdown, planning it for irvm. retained-B is the heap the engine keeps
// (the garbage collector scans it on every cycle of a serving process).
func BenchmarkNewEngine(b *testing.B) {
	for _, ev := range []string{bundles.EvaluatorIR, bundles.EvaluatorCheck} {
		b.Run(ev, func(b *testing.B) {
			b.Setenv(bundles.EvaluatorEnv, ev)
			bdl := prodBundle(b, "bench", "")
			for b.Loop() {
				if _, err := bundles.NewEngine(context.Background(), bdl); err != nil {
					b.Fatal(err)
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			eng, err := bundles.NewEngine(context.Background(), bdl)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "retained-B")
			runtime.KeepAlive(eng)
		})
	}
}
