package policy

// RuntimeRuleset holds file and process selectors and responses in the
// Elastic Defend for Containers syntax, plus a mode.
type RuntimeRuleset struct {
	Metadata Metadata           `yaml:"metadata" json:"metadata"`
	Spec     RuntimeRulesetSpec `yaml:"spec" json:"spec"`
	Source   Source             `yaml:"-" json:"-"`
}

// RuntimeRulesetSpec is a RuntimeRuleset's content.
type RuntimeRulesetSpec struct {
	// Mode is learning (events extend a behaviour profile, no alerts),
	// audit (report, never block) or enforce (default).
	Mode    string      `yaml:"mode" json:"mode"`
	File    *D4CSection `yaml:"file" json:"file,omitempty"`
	Process *D4CSection `yaml:"process" json:"process,omitempty"`
}

// D4CSection is a `file:` or `process:` block.
type D4CSection struct {
	Selectors []Selector `yaml:"selectors" json:"selectors,omitempty"`
	Responses []Response `yaml:"responses" json:"responses,omitempty"`
}

// Selector names a set of conditions; all given conditions must hold and
// each list matches when any of its values matches.
type Selector struct {
	Name                     string   `yaml:"name" json:"name"`
	Operation                []string `yaml:"operation" json:"operation,omitempty"`
	ContainerImageFullName   []string `yaml:"containerImageFullName" json:"containerImageFullName,omitempty"`
	ContainerImageName       []string `yaml:"containerImageName" json:"containerImageName,omitempty"`
	ContainerImageTag        []string `yaml:"containerImageTag" json:"containerImageTag,omitempty"`
	KubernetesClusterID      []string `yaml:"kubernetesClusterId" json:"kubernetesClusterId,omitempty"`
	KubernetesClusterName    []string `yaml:"kubernetesClusterName" json:"kubernetesClusterName,omitempty"`
	KubernetesNamespace      []string `yaml:"kubernetesNamespace" json:"kubernetesNamespace,omitempty"`
	KubernetesPodName        []string `yaml:"kubernetesPodName" json:"kubernetesPodName,omitempty"`
	KubernetesPodLabel       []string `yaml:"kubernetesPodLabel" json:"kubernetesPodLabel,omitempty"`
	TargetFilePath           []string `yaml:"targetFilePath" json:"targetFilePath,omitempty"`
	IgnoreVolumeMounts       bool     `yaml:"ignoreVolumeMounts" json:"ignoreVolumeMounts,omitempty"`
	IgnoreVolumeFiles        bool     `yaml:"ignoreVolumeFiles" json:"ignoreVolumeFiles,omitempty"`
	ProcessExecutable        []string `yaml:"processExecutable" json:"processExecutable,omitempty"`
	ProcessName              []string `yaml:"processName" json:"processName,omitempty"`
	SessionLeaderInteractive *bool    `yaml:"sessionLeaderInteractive" json:"sessionLeaderInteractive,omitempty"`
	// KubernetesWorkload and ContainerName are Palisade's extensions of
	// the Defend for Containers conditions: the container's workload
	// ("Deployment/web", "CronJob/nightly", "Pod/<name>" for a bare pod;
	// exact, or a prefix when a value ends with `*`, like
	// kubernetesPodName) and its name in the pod spec (exact). Learned
	// rules (LearnedRules) select their workload's container with them.
	KubernetesWorkload []string `yaml:"kubernetesWorkload" json:"kubernetesWorkload,omitempty"`
	ContainerName      []string `yaml:"containerName" json:"containerName,omitempty"`
}

// Response acts on events matched by any selector in Match and by none in
// Exclude. The block action requires alert.
type Response struct {
	Match   []string `yaml:"match" json:"match,omitempty"`
	Exclude []string `yaml:"exclude" json:"exclude,omitempty"`
	Actions []string `yaml:"actions" json:"actions,omitempty"`
}

// Attestor names keys or keyless identities that sign images.
type Attestor struct {
	Metadata Metadata     `yaml:"metadata" json:"metadata"`
	Spec     AttestorSpec `yaml:"spec" json:"spec"`
	Source   Source       `yaml:"-" json:"-"`
}

// AttestorSpec is an Attestor's content: public keys, keyless identities,
// or both (any one of them verifying is enough).
type AttestorSpec struct {
	Keys    []AttestorKey     `yaml:"keys" json:"keys,omitempty"`
	Keyless []KeylessIdentity `yaml:"keyless" json:"keyless,omitempty"`
}

// AttestorKey is a cosign-compatible public key, inline (PEM) or from a
// file on the verifier's machine.
type AttestorKey struct {
	PublicKey string `yaml:"publicKey" json:"publicKey,omitempty"`
	File      string `yaml:"file" json:"file,omitempty"`
}

// KeylessIdentity is a Fulcio certificate identity.
type KeylessIdentity struct {
	Issuer         string `yaml:"issuer" json:"issuer"`
	Subject        string `yaml:"subject" json:"subject,omitempty"`
	SubjectRegExp  string `yaml:"subjectRegExp" json:"subjectRegExp,omitempty"`
	FulcioRoots    string `yaml:"fulcioRoots" json:"fulcioRoots,omitempty"`
	RekorPublicKey string `yaml:"rekorPublicKey" json:"rekorPublicKey,omitempty"`
}

// PolicyTest is a set of manifests with their expected decisions,
// evaluated against the compiled bundle of one cluster.
type PolicyTest struct {
	Metadata Metadata       `yaml:"metadata" json:"metadata"`
	Spec     PolicyTestSpec `yaml:"spec" json:"spec"`
	Source   Source         `yaml:"-" json:"-"`
}

// PolicyTestSpec is a PolicyTest's content.
type PolicyTestSpec struct {
	Cluster string `yaml:"cluster" json:"cluster"`
	// Now is the evaluation time (RFC 3339) of every case, so that tests
	// of expiring exceptions do not change meaning with the calendar.
	Now   string     `yaml:"now" json:"now,omitempty"`
	Cases []TestCase `yaml:"cases" json:"cases"`
}

// TestCase is one request and its expected decision.
type TestCase struct {
	Name            string            `yaml:"name" json:"name"`
	Point           string            `yaml:"point" json:"point,omitempty"` // admission (default) or continuous
	Namespace       string            `yaml:"namespace" json:"namespace,omitempty"`
	NamespaceLabels map[string]string `yaml:"namespaceLabels" json:"namespaceLabels,omitempty"`
	Operation       string            `yaml:"operation" json:"operation,omitempty"`
	SubResource     string            `yaml:"subResource" json:"subResource,omitempty"`
	User            string            `yaml:"user" json:"user,omitempty"`
	Groups          []string          `yaml:"groups" json:"groups,omitempty"`
	Now             string            `yaml:"now" json:"now,omitempty"`
	// Object is the manifest, inline; File names a manifest file relative
	// to the test file instead.
	Object map[string]any `yaml:"object" json:"object,omitempty"`
	File   string         `yaml:"file" json:"file,omitempty"`
	// Images stand in for what the image verifier would find, by image
	// reference as written in the manifest, so that verification rules
	// can be tested offline. An image the rules ask about that is not
	// listed is unverifiable, as with an unreachable registry.
	Images map[string]TestImage `yaml:"images" json:"images,omitempty"`
	Expect Expectation          `yaml:"expect" json:"expect"`
}

// TestImage is what a test case says the image verifier found.
type TestImage struct {
	// SignedBy lists the attestors whose signature verifies.
	SignedBy []string `yaml:"signedBy" json:"signedBy,omitempty"`
	// RegistryError, when set, says the registry could not be asked.
	RegistryError string `yaml:"registryError" json:"registryError,omitempty"`
	// Scans are verified vulnerability attestations.
	Scans []TestScan `yaml:"scans" json:"scans,omitempty"`
}

// TestScan is a vulnerability scan signed by an attestor.
type TestScan struct {
	Attestor        string              `yaml:"attestor" json:"attestor"`
	Finished        string              `yaml:"finished" json:"finished"` // RFC 3339
	Vulnerabilities []TestVulnerability `yaml:"vulnerabilities" json:"vulnerabilities,omitempty"`
}

// TestVulnerability is one finding of a scan.
type TestVulnerability struct {
	ID       string `yaml:"id" json:"id"`
	Severity string `yaml:"severity" json:"severity"`
}

// Expectation is what a TestCase must produce.
type Expectation struct {
	Allowed *bool `yaml:"allowed" json:"allowed"`
	// Violations are the rule names expected, all of them and no others
	// (order does not matter). Nil means not checked.
	Violations []string `yaml:"violations" json:"violations,omitempty"`
	// Messages are substrings expected among the violation messages.
	Messages []string `yaml:"messages" json:"messages,omitempty"`
}
