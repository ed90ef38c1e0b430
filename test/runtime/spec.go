package runtime

// The subset of the OCI runtime specification (config.json) that these
// containers use. github.com/opencontainers/runtime-spec is not in the
// module graph, and a test harness is no reason to add it: these structs
// carry the same JSON names, and runc rejects a config it cannot read.

type spec struct {
	OCIVersion  string            `json:"ociVersion"`
	Process     specProcess       `json:"process"`
	Root        specRoot          `json:"root"`
	Hostname    string            `json:"hostname"`
	Mounts      []specMount       `json:"mounts"`
	Linux       specLinux         `json:"linux"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type specProcess struct {
	Terminal        bool             `json:"terminal"`
	User            specUser         `json:"user"`
	Args            []string         `json:"args"`
	Env             []string         `json:"env"`
	Cwd             string           `json:"cwd"`
	Capabilities    specCapabilities `json:"capabilities"`
	NoNewPrivileges bool             `json:"noNewPrivileges"`
}

type specUser struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

type specCapabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

type specRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type specMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

type specLinux struct {
	Namespaces    []specNamespace `json:"namespaces"`
	CgroupsPath   string          `json:"cgroupsPath"`
	Resources     specResources   `json:"resources"`
	MaskedPaths   []string        `json:"maskedPaths"`
	ReadonlyPaths []string        `json:"readonlyPaths"`
}

type specNamespace struct {
	Type string `json:"type"`
}

type specResources struct {
	Devices []specDevice `json:"devices"`
}

type specDevice struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access"`
}

// containerdCaps is containerd's default capability set: the sensor sees
// what a pod without a securityContext can do, no more (chown, setuid and
// the like work, so tests can drop privileges inside the container).
var containerdCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
	"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// newSpec returns the config of a container whose root file system is the
// bundle's rootfs directory, writable, so that a test sees on the host
// what a process wrote inside. Namespaces: pid, mount, uts and ipc; the
// network namespace is the host's, as for a hostNetwork pod, because the
// sensor attributes by cgroup, not by network, and a fresh network
// namespace would need a CNI to be of any use.
func newSpec(id, hostname, cgroupsPath string, args []string, annotations map[string]string) spec {
	return spec{
		OCIVersion: "1.0.2",
		Process: specProcess{
			Args: args,
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"HOSTNAME=" + hostname,
			},
			Cwd: "/",
			Capabilities: specCapabilities{
				Bounding:  containerdCaps,
				Effective: containerdCaps,
				Permitted: containerdCaps,
			},
			NoNewPrivileges: true,
		},
		Root:     specRoot{Path: "rootfs"},
		Hostname: hostname,
		Mounts: []specMount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
		},
		Linux: specLinux{
			Namespaces: []specNamespace{
				{Type: "pid"}, {Type: "mount"}, {Type: "uts"}, {Type: "ipc"},
			},
			CgroupsPath: cgroupsPath,
			// Deny device access except runc's defaults (null, zero,
			// random, tty...), as every container runtime does.
			Resources: specResources{Devices: []specDevice{{Allow: false, Access: "rwm"}}},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
		Annotations: annotations,
	}
}
