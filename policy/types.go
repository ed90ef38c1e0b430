package policy

// APIVersion is the only apiVersion the loader accepts.
const APIVersion = "palisade.dev/v1alpha1"

// Kinds of documents in a policy repository.
const (
	KindPolicy         = "Policy"
	KindRuntimeRuleset = "RuntimeRuleset"
	KindAttestor       = "Attestor"
	KindPolicyTest     = "PolicyTest"
)

// Modes of a Policy (and of a RuntimeRuleset, which adds ModeLearning).
const (
	ModeEnforce  = "enforce"
	ModeAudit    = "audit"
	ModeLearning = "learning"
)

// Actions a rule can take. Deployment rules take log or block; continuous
// rules take log, isolate or terminate.
const (
	ActionLog       = "log"
	ActionBlock     = "block"
	ActionIsolate   = "isolate"
	ActionTerminate = "terminate"
)

// Metadata names a document.
type Metadata struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// Policy is the policy of one or more clusters.
type Policy struct {
	Metadata Metadata   `yaml:"metadata" json:"metadata"`
	Spec     PolicySpec `yaml:"spec" json:"spec"`
	Source   Source     `yaml:"-" json:"-"`
}

// PolicySpec is a Policy's content. ClusterWide applies to every namespace
// that no Namespaced definition lists. A namespaced definition replaces the
// cluster-wide one as a whole for the namespaces it lists: nothing is
// inherited silently, so what a namespace enforces is read in one place
// (share rule blocks between definitions with YAML anchors and merge keys).
type PolicySpec struct {
	// Clusters are the cluster names this policy is compiled for.
	Clusters []string `yaml:"clusters" json:"clusters,omitempty"`
	// Mode is enforce (default) or audit; audit downgrades every block,
	// isolate and terminate action to log at admission and in the
	// scanner, and puts every RuntimeRuleset in its own audit mode on the
	// nodes (block becomes alert: a runtime response's log goes to the
	// event stream, and an audit must still raise what it would block).
	Mode string `yaml:"mode" json:"mode"`
	// SystemNamespace is where Palisade runs (default palisade-system);
	// Palisade never acts on it.
	SystemNamespace string `yaml:"systemNamespace" json:"systemNamespace"`
	// SystemImages are Palisade's own images, an implicit exception to
	// every rule. The default is DefaultSystemImages.
	SystemImages []Matcher              `yaml:"systemImages" json:"systemImages,omitempty"`
	ClusterWide  Definition             `yaml:"clusterWide" json:"clusterWide"`
	Namespaced   []NamespacedDefinition `yaml:"namespaced" json:"namespaced,omitempty"`
}

// Definition holds the three tabs of a policy and their exceptions.
type Definition struct {
	Description string      `yaml:"description" json:"description,omitempty"`
	Deployment  Rules       `yaml:"deployment" json:"deployment"`
	Continuous  Continuous  `yaml:"continuous" json:"continuous"`
	Runtime     Runtime     `yaml:"runtime" json:"runtime"`
	Exceptions  []Exception `yaml:"exceptions" json:"exceptions,omitempty"`
}

// NamespacedDefinition is a Definition that takes precedence over the
// cluster-wide one in the namespaces it lists.
type NamespacedDefinition struct {
	Name       string   `yaml:"name" json:"name"`
	Namespaces []string `yaml:"namespaces" json:"namespaces,omitempty"`
	Definition `yaml:",inline"`
}

// Continuous is the continuous tab: rules re-checked against running pods.
type Continuous struct {
	// Schedule is a cron expression or @every duration (default @every 5m).
	Schedule string `yaml:"schedule" json:"schedule"`
	Rules    Rules  `yaml:"rules" json:"rules"`
}

// Runtime is the runtime tab: the RuntimeRulesets that apply.
type Runtime struct {
	Rulesets []string `yaml:"rulesets" json:"rulesets,omitempty"`
}

// Exception overrides the deployment and continuous rules of its definition
// for the workloads it matches. All the conditions given must hold; a
// condition left out matches everything.
type Exception struct {
	Name            string            `yaml:"name" json:"name"`
	Description     string            `yaml:"description" json:"description,omitempty"`
	Rules           []string          `yaml:"rules" json:"rules,omitempty"`
	Images          []Matcher         `yaml:"images" json:"images,omitempty"`
	Namespaces      []string          `yaml:"namespaces" json:"namespaces,omitempty"`
	PodLabels       map[string]string `yaml:"podLabels" json:"podLabels,omitempty"`
	ServiceAccounts []string          `yaml:"serviceAccounts" json:"serviceAccounts,omitempty"`
	// Expires is a date (2026-12-31: the exception holds through that day,
	// UTC) or an RFC 3339 time. Normalised into ExpiresNs.
	Expires   string `yaml:"expires" json:"expires,omitempty"`
	ExpiresNs int64  `yaml:"-" json:"expiresNs,omitempty"`
	Ticket    string `yaml:"ticket" json:"ticket,omitempty"`
}

// Matcher matches a string (an image reference, a name or a tag). Exactly
// one of its fields is set. Image matchers compare against the normalised
// reference (docker.io/library/nginx:1.25).
type Matcher struct {
	Equals   string `yaml:"equals" json:"equals,omitempty"`
	Contains string `yaml:"contains" json:"contains,omitempty"`
	Prefix   string `yaml:"prefix" json:"prefix,omitempty"`
	// Glob: `*` matches within one path segment, `**` across segments.
	Glob string `yaml:"glob" json:"glob,omitempty"`
}

// Rules is the catalog of deployment and continuous rules. A nil rule is
// off. Their meaning is defined in Rego (rego/palisade/rules); this type
// only carries parameters.
type Rules struct {
	Privileged                   *Rule                  `yaml:"privileged" json:"privileged,omitempty"`
	HostNamespaces               *HostNamespacesRule    `yaml:"hostNamespaces" json:"hostNamespaces,omitempty"`
	HostPorts                    *HostPortsRule         `yaml:"hostPorts" json:"hostPorts,omitempty"`
	HostPathVolumes              *Rule                  `yaml:"hostPathVolumes" json:"hostPathVolumes,omitempty"`
	BlockedHostPaths             *BlockedHostPathsRule  `yaml:"blockedHostPaths" json:"blockedHostPaths,omitempty"`
	PodSecurityStandards         *PodSecurityRule       `yaml:"podSecurityStandards" json:"podSecurityStandards,omitempty"`
	AutomountServiceAccountToken *Rule                  `yaml:"automountServiceAccountToken" json:"automountServiceAccountToken,omitempty"`
	Capabilities                 *CapabilitiesRule      `yaml:"capabilities" json:"capabilities,omitempty"`
	AllowPrivilegeEscalation     *Rule                  `yaml:"allowPrivilegeEscalation" json:"allowPrivilegeEscalation,omitempty"`
	RunAsRoot                    *Rule                  `yaml:"runAsRoot" json:"runAsRoot,omitempty"`
	ReadOnlyRootFilesystem       *Rule                  `yaml:"readOnlyRootFilesystem" json:"readOnlyRootFilesystem,omitempty"`
	Resources                    *ResourcesRule         `yaml:"resources" json:"resources,omitempty"`
	AllowedRegistries            *AllowedRegistriesRule `yaml:"allowedRegistries" json:"allowedRegistries,omitempty"`
	ImageName                    *MatchRule             `yaml:"imageName" json:"imageName,omitempty"`
	ImageTag                     *MatchRule             `yaml:"imageTag" json:"imageTag,omitempty"`
	LatestTag                    *Rule                  `yaml:"latestTag" json:"latestTag,omitempty"`
	DigestPinning                *Rule                  `yaml:"digestPinning" json:"digestPinning,omitempty"`
	KubectlAccess                *KubectlAccessRule     `yaml:"kubectlAccess" json:"kubectlAccess,omitempty"`

	// Image verification rules are lists: a tab may hold several
	// independent ones, each named, each with its own action, conditions,
	// preconditions and exceptions. A violation names the rule
	// "imageSignature.<name>" or "scanResults.<name>". The tab's exceptions
	// do not apply to them (an exception for running as root must not
	// also waive signatures); only their own exceptions and the implicit
	// system exception do. A continuous verification rule inherits nothing
	// from the deployment tab: it is its own rule.
	ImageSignature []ImageSignatureRule `yaml:"imageSignature" json:"imageSignature,omitempty"`
	ScanResults    []ScanResultsRule    `yaml:"scanResults" json:"scanResults,omitempty"`
}

// Families of verification rules: the prefix of their violations' rule
// names.
const (
	RuleImageSignature = "imageSignature"
	RuleScanResults    = "scanResults"
)

// VerificationRule is what imageSignature and scanResults rules share.
type VerificationRule struct {
	Name        string `yaml:"name" json:"name"`
	Action      string `yaml:"action" json:"action"`
	Description string `yaml:"description" json:"description,omitempty"`
	// Conditions: the images (matched against the normalised reference)
	// and namespaces the rule applies to; empty means every one.
	Images     []Matcher `yaml:"images" json:"images,omitempty"`
	Namespaces []string  `yaml:"namespaces" json:"namespaces,omitempty"`
	// Preconditions must all hold for the rule to apply at all.
	Preconditions Preconditions `yaml:"preconditions" json:"preconditions"`
	// Exceptions of this rule alone; their rules field must be empty.
	Exceptions []Exception `yaml:"exceptions" json:"exceptions,omitempty"`
	// RegistryUnavailable is the action when the registry could not be
	// asked (unreachable, timeout, refused credentials). Default: Action,
	// so that a block rule fails closed.
	RegistryUnavailable string `yaml:"registryUnavailable" json:"registryUnavailable"`
}

// Preconditions select the pods a verification rule applies to: the
// namespace must carry every namespace label, the pod every pod label.
type Preconditions struct {
	NamespaceLabels map[string]string `yaml:"namespaceLabels" json:"namespaceLabels,omitempty"`
	PodLabels       map[string]string `yaml:"podLabels" json:"podLabels,omitempty"`
}

// ImageSignatureRule requires the images it selects to be signed by its
// attestors: all of them (match: all, the default) or at least one
// (match: any).
type ImageSignatureRule struct {
	VerificationRule `yaml:",inline"`
	Attestors        []string `yaml:"attestors" json:"attestors"`
	Match            string   `yaml:"match" json:"match"`
}

// ScanResultsRule requires a vulnerability attestation signed by an
// attestor, not older than MaxAgeDays, without findings at or above
// Severity other than the allowed ids.
type ScanResultsRule struct {
	VerificationRule `yaml:",inline"`
	Attestor         string `yaml:"attestor" json:"attestor"`
	MaxAgeDays       int    `yaml:"maxAgeDays" json:"maxAgeDays"`
	// Severity is low, medium, high (default) or critical.
	Severity string `yaml:"severity" json:"severity"`
	// Allow lists vulnerability ids (CVE-2024-3094, GHSA-...) accepted
	// whatever their severity.
	Allow []string `yaml:"allow" json:"allow,omitempty"`
	// Unscanned is the action when there is no fresh verified scan.
	// Default: Action.
	Unscanned string `yaml:"unscanned" json:"unscanned"`
}

// Rule is a rule without parameters.
type Rule struct {
	Action      string `yaml:"action" json:"action"`
	Description string `yaml:"description" json:"description,omitempty"`
}

// HostNamespacesRule forbids hostNetwork, hostPID and hostIPC (default: all three).
type HostNamespacesRule struct {
	Rule       `yaml:",inline"`
	Namespaces []string `yaml:"namespaces" json:"namespaces,omitempty"`
}

// HostPortsRule forbids host ports other than the allowed ones.
type HostPortsRule struct {
	Rule    `yaml:",inline"`
	Allowed []int `yaml:"allowed" json:"allowed,omitempty"`
}

// BlockedHostPathsRule forbids hostPath volumes that expose these paths:
// at or below them (on whole path segments: /var/run blocks
// /var/run/docker.sock, not /var/running) or above them (/var and / expose
// /var/run too).
type BlockedHostPathsRule struct {
	Rule  `yaml:",inline"`
	Paths []string `yaml:"paths" json:"paths,omitempty"`
}

// PodSecurityRule requires a Pod Security Standards level.
type PodSecurityRule struct {
	Rule  `yaml:",inline"`
	Level string `yaml:"level" json:"level"`
}

// CapabilitiesRule limits effective capabilities to a preset and/or denies
// a list (ALL in Deny means every capability).
type CapabilitiesRule struct {
	Rule   `yaml:",inline"`
	Preset string   `yaml:"preset" json:"preset,omitempty"`
	Deny   []string `yaml:"deny" json:"deny,omitempty"`
}

// ResourcesRule requires resource requests and limits (default: all four).
type ResourcesRule struct {
	Rule    `yaml:",inline"`
	Require []string `yaml:"require" json:"require,omitempty"`
}

// AllowedRegistriesRule allows images only from these registries
// (host, optionally followed by path segments).
type AllowedRegistriesRule struct {
	Rule       `yaml:",inline"`
	Registries []string `yaml:"registries" json:"registries,omitempty"`
}

// MatchRule denies values matching Deny and, when Allow is not empty,
// values matching none of Allow.
type MatchRule struct {
	Rule  `yaml:",inline"`
	Allow []Matcher `yaml:"allow" json:"allow,omitempty"`
	Deny  []Matcher `yaml:"deny" json:"deny,omitempty"`
}

// KubectlAccessRule forbids interactive access to pods
// (exec, attach, portForward, ephemeralContainers; default all),
// except for the listed users and groups.
type KubectlAccessRule struct {
	Rule       `yaml:",inline"`
	Operations []string `yaml:"operations" json:"operations,omitempty"`
	Users      []string `yaml:"users" json:"users,omitempty"`
	Groups     []string `yaml:"groups" json:"groups,omitempty"`
}
