package k8sast

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/randfill"
)

// reference is the conversion FromObject must be equal to.
func reference(obj any) (ast.Value, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(m)
}

// checkSame fails t unless FromObject agrees with the reference on obj. It reports whether the
// reference accepted obj.
func checkSame(t testing.TB, obj any) bool {
	t.Helper()
	want, wantErr := reference(obj)
	got, err := FromObject(obj)
	switch {
	case wantErr != nil && err == nil:
		t.Errorf("reference failed with %q, FromObject returned %v", wantErr, got)
	case wantErr == nil && err != nil:
		t.Errorf("FromObject failed with %q, reference returned %v", err, want)
	case wantErr == nil && ast.Compare(got, want) != 0:
		t.Errorf("mismatch for %T\n got: %v\nwant: %v", obj, got, want)
	}
	return wantErr == nil
}

// Local types for the corners that the Kubernetes types in the table do not reach: no type in
// core, apps or batch has float fields, for instance.
type (
	// upper has a custom form, which the reference applies except to struct fields of scalar kind.
	upper string

	// ptrMarshaler marshals through a pointer receiver only, so the reference can convert it only
	// where it is addressable (struct fields, slice elements) and fails for map values.
	ptrMarshaler struct{ V string }

	// ptrConverter is the same with the direct value.UnstructuredConverter path.
	ptrConverter struct{ V int }

	inner struct {
		A string `json:"a"`
		B string `json:"b,omitempty"`
	}
	Extra struct {
		C int `json:"c"`
	}
	ExtraMap map[string]int

	corners struct {
		F32       float32           `json:"f32"`
		F64       float64           `json:"f64"`
		F64Omit   float64           `json:"f64Omit,omitempty"`
		U         uint64            `json:"u"`
		I8        int8              // no tag: Go name
		Skipped   string            `json:"-"`
		private   string            // kept by the reference, unlike encoding/json
		Named     upper             `json:"named"`
		NamedList []upper           `json:"namedList"`
		NamedMap  map[string]upper  `json:"namedMap"`
		Any       any               `json:"any"`
		NilAny    any               `json:"nilAny"`
		Ptr       *int32            `json:"ptr"`
		NilPtr    *int32            `json:"nilPtr"`
		ZeroTime  metav1.Time       `json:"zeroTime"`
		OmitZero  metav1.Time       `json:"omitZero,omitzero"`
		Struct    inner             `json:"struct,omitempty"` // omitempty never drops a struct
		NotInline inner             `json:",inline"`          // only anonymous fields inline
		Marshal   ptrMarshaler      `json:"marshal"`
		Convert   ptrConverter      `json:"convert"`
		Converts  []ptrConverter    `json:"converts"`
		Bytes     []byte            `json:"bytes"`
		NilMap    map[string]string `json:"nilMap"`
		EmptyMap  map[string]string `json:"emptyMap"`
		OmitMap   map[string]string `json:"omitMap,omitempty"`
		EmptyList []string          `json:"emptyList"`
	}

	// embedding inlines an anonymous struct, a pointer to one and a map; A is shadowed by the
	// later field, and map keys by nothing since the map comes last.
	embedding struct {
		inner
		*Extra
		A string `json:"a"`
		ExtraMap
	}

	overflow struct {
		U uint `json:"u"`
	}
	array struct {
		A [2]int `json:"a"`
	}
	intKeys struct {
		M map[int]string `json:"m"`
	}
	ptrMarshalerMap struct {
		M map[string]ptrMarshaler `json:"m"`
	}
	ptrConverterMap struct {
		M map[string]ptrConverter `json:"m"`
	}
	nestedConverterMap struct {
		M map[string]struct{ C ptrConverter } `json:"m"` // fields of map values are not addressable
	}
	intOrStrings struct {
		Field intstr.IntOrString            `json:"field"`
		List  []intstr.IntOrString          `json:"list"`
		Map   map[string]intstr.IntOrString `json:"map"` // map values take the JSON route
	}
)

func (u upper) MarshalJSON() ([]byte, error) { return json.Marshal("custom " + string(u)) }

func (p *ptrMarshaler) MarshalJSON() ([]byte, error) { return json.Marshal("ptr " + p.V) }

func (p *ptrConverter) MarshalJSON() ([]byte, error) { return json.Marshal(p.V) }
func (p *ptrConverter) ToUnstructured() any          { return int64(p.V) }

func TestFromObjectTable(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 5, 6, 7, 8, 9, 123, time.FixedZone("x", 3600)))
	tests := map[string]any{
		"realistic pod": realisticPod(),
		"empty pod":     &corev1.Pod{},
		"zero and set times": &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: created, DeletionTimestamp: &created},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady}, // zero LastTransitionTime without omitempty: null
				{Type: corev1.PodScheduled, LastTransitionTime: created},
			}},
		},
		"quantities": &corev1.Pod{Spec: corev1.PodSpec{
			Overhead: corev1.ResourceList{
				corev1.ResourceCPU:     resource.MustParse("500m"),
				corev1.ResourceMemory:  resource.MustParse("1.5Gi"),
				corev1.ResourceStorage: *resource.NewQuantity(3e9, resource.DecimalSI),
				"example.com/gpu":      *resource.NewScaledQuantity(12, 6),
			},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))},
			}}},
		}},
		"int or string": &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge:       ptr.To(intstr.FromInt32(2)),
				MaxUnavailable: ptr.To(intstr.FromString("25%")),
			}},
		}},
		"nil and empty collections": &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}, Finalizers: []string{}},
			Spec: corev1.PodSpec{
				Containers:       []corev1.Container{{Name: "c", Args: []string{}, Env: nil}},
				NodeSelector:     map[string]string{},
				ImagePullSecrets: []corev1.LocalObjectReference{},
			},
		},
		"pointers to scalars": &corev1.Pod{Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:    ptr.To[int64](-1),
				RunAsNonRoot: ptr.To(true),
				FSGroup:      ptr.To[int64](1 << 40),
			},
		}},
		"type meta inlined": &batchv1.CronJob{
			TypeMeta:   metav1.TypeMeta{Kind: "CronJob", APIVersion: "batch/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ops"},
			Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(false)},
		},
		"secret bytes": &corev1.Secret{
			Data:       map[string][]byte{"empty": {}, "nil": nil, "bin": {0, 1, 0xfe, 0xff}, "text": []byte("hunter2")},
			StringData: map[string]string{"k": "v"},
			Immutable:  ptr.To(true),
			Type:       corev1.SecretTypeOpaque,
		},
		"namespace": &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: "ns", Annotations: map[string]string{"a": ""}},
			Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
			Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
		},
		"managed fields": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{"f:app":{}}},"n":1.5}`), Time: &created},
			{Manager: "empty", FieldsV1: &metav1.FieldsV1{}},
		}}},
		"invalid managed field fails": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
			{FieldsV1: metav1.NewFieldsV1(`{not json`)},
		}}},
		"corners": &corners{
			F32: 0.1, F64: 1e300, U: math.MaxInt64, I8: -8, Skipped: "x", private: "kept",
			Named: "scalar", NamedList: []upper{"a"}, NamedMap: map[string]upper{"k": "v"},
			Any: map[string]any{"n": 1}, Ptr: ptr.To[int32](7),
			Marshal: ptrMarshaler{"m"}, Convert: ptrConverter{3}, Converts: []ptrConverter{{4}},
			Bytes: []byte{}, EmptyMap: map[string]string{}, OmitMap: map[string]string{}, EmptyList: []string{},
		},
		"inlining": &embedding{
			inner: inner{A: "shadowed", B: "b"}, Extra: &Extra{C: 1}, A: "wins",
			ExtraMap: ExtraMap{"b": 2, "d": 4},
		},
		"nil inlined pointer": &embedding{ExtraMap: ExtraMap{}},
		"top-level map":       &map[string]int{"a": 1},
		"unstructured": &unstructured.Unstructured{Object: map[string]any{
			"kind": "Pod", "metadata": map[string]any{"name": "u"}, "n": int64(3),
		}},
		"uint overflow fails":                  &overflow{U: 1<<63 + 1},
		"array field fails":                    &array{},
		"map with int keys fails":              &intKeys{M: map[int]string{1: "a"}},
		"unaddressable marshal fails":          &ptrMarshalerMap{M: map[string]ptrMarshaler{"k": {}}},
		"unaddressable converter fails":        &ptrConverterMap{M: map[string]ptrConverter{"k": {}}},
		"unaddressable nested converter fails": &nestedConverterMap{M: map[string]struct{ C ptrConverter }{"k": {}}},
		"int or string corners": &intOrStrings{
			Field: intstr.FromString("bad \xff utf-8 <&>"),
			List:  []intstr.IntOrString{intstr.FromInt32(-7), intstr.FromString("\u2028"), intstr.FromString("\xfe")},
			Map:   map[string]intstr.IntOrString{"i": intstr.FromInt32(1 << 30), "s": intstr.FromString("x\xff")},
		},
		"int or string of unknown type fails": &intOrStrings{Field: intstr.IntOrString{Type: 7}},
	}
	for name, obj := range tests {
		t.Run(name, func(t *testing.T) {
			// Guard the table itself: cases named "fails" must be ones the reference rejects.
			if accepted := checkSame(t, obj); accepted == strings.HasSuffix(name, " fails") {
				t.Errorf("reference accepted the case: %v", accepted)
			}
		})
	}
}

// TestFromObjectConcurrent runs conversions in parallel, as the scanner does; run it with -race
// to check the plan caches and the pooled scratch state.
func TestFromObjectConcurrent(t *testing.T) {
	pod := realisticPod()
	want, err := reference(pod)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := FromObject(pod)
				if err != nil || ast.Compare(got, want) != 0 {
					t.Errorf("concurrent conversion: err %v, got %v", err, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fillFuncs replace randfill's values for the few types whose random content the reference
// rejects or cannot format, as apimachinery's own fuzzers (pkg/apis/meta/fuzzer) do.
var fillFuncs = []any{
	// Quantity keeps its value in unexported fields, so randfill would leave only a random Format.
	func(q *resource.Quantity, c randfill.Continue) {
		formats := []resource.Format{resource.DecimalSI, resource.BinarySI, resource.DecimalExponent}
		*q = *resource.NewMilliQuantity(c.Int63n(1e12), formats[c.Intn(len(formats))])
	},
	// A random Type is neither Int nor String, which makes MarshalJSON fail.
	func(v *intstr.IntOrString, c randfill.Continue) {
		if c.Bool() {
			*v = intstr.FromInt32(c.Int31() - 1<<30)
		} else {
			*v = intstr.FromString(c.String(0))
		}
	},
	// Random bytes are not JSON, so every object with managed fields would fail.
	func(f *metav1.FieldsV1, c randfill.Continue) {
		raw, err := json.Marshal(map[string]any{"f:" + c.String(0): map[string]any{"n": c.Int63(), "x": c.Float64()}})
		if err != nil {
			panic(err)
		}
		f.SetRawBytes(raw)
	},
	// randfill never leaves a time zero; zero times must come out as null.
	func(tm *metav1.Time, c randfill.Continue) {
		if c.Intn(4) > 0 {
			c.Fill(&tm.Time)
		}
	},
}

func newFiller(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(.3).NumElements(0, 3).Funcs(fillFuncs...)
}

func TestFromObjectRandom(t *testing.T) {
	const perType = 1000
	kinds := map[string]func() any{
		"Pod":        func() any { return &corev1.Pod{} },
		"Deployment": func() any { return &appsv1.Deployment{} },
		"CronJob":    func() any { return &batchv1.CronJob{} },
		"Namespace":  func() any { return &corev1.Namespace{} },
		"Secret":     func() any { return &corev1.Secret{} },
	}
	for kind, newObj := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			accepted := 0
			for seed := range int64(perType) {
				obj := newObj()
				newFiller(seed).Fill(obj)
				if checkSame(t, obj) {
					accepted++
				}
			}
			t.Logf("%d random %s objects compared, %d accepted by the reference", perType, kind, accepted)
		})
	}
}

func FuzzFromObject(f *testing.F) {
	f.Add([]byte("seed"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Fuzz(func(t *testing.T, data []byte) {
		pod := &corev1.Pod{}
		randfill.NewFromGoFuzz(data).NilChance(.3).NumElements(0, 3).Funcs(fillFuncs...).Fill(pod)
		checkSame(t, pod)
	})
}

func BenchmarkFromObject(b *testing.B) {
	pod := realisticPod()
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reference(pod); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("k8sast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := FromObject(pod); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// realisticPod looks like a pod of a typical Deployment as the informer cache holds it.
func realisticPod() *corev1.Pod {
	started := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	securityContext := &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](1000),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	container := func(name, image string, port int32) corev1.Container {
		return corev1.Container{
			Name:            name,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{"--port", fmt.Sprint(port), "--log-level=info"},
			Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{
				{Name: "MODE", Value: "production"},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
			},
			Resources: resources,
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/app", ReadOnly: true},
				{Name: "tmp", MountPath: "/tmp"},
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
				PeriodSeconds: 10,
			},
			SecurityContext:          securityContext,
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}
	}
	status := func(name, image string) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: name, Image: image, ImageID: image + "@sha256:0123456789abcdef", Ready: true, Started: ptr.To(true),
			ContainerID: "containerd://abcdef0123456789",
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-7d9f8b6c5-x2k4p",
			Namespace:         "shop",
			UID:               "5f0c7a5e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
			ResourceVersion:   "123456789",
			CreationTimestamp: started,
			Labels:            map[string]string{"app": "web", "pod-template-hash": "7d9f8b6c5", "tier": "frontend"},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/restartedAt": "2025-01-02T03:00:00Z",
				"prometheus.io/scrape":              "true",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8b6c5",
				UID: "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				container("web", "registry.example.com/shop/web:1.4.2", 8080),
				container("sidecar", "registry.example.com/infra/proxy:2.0.1", 9090),
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}, DefaultMode: ptr.To[int32](0o644),
				}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
				}}}},
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			DNSPolicy:                     corev1.DNSClusterFirst,
			ServiceAccountName:            "web",
			NodeName:                      "node-17",
			SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)},
			SchedulerName:                 corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			Priority:           ptr.To[int32](0),
			EnableServiceLinks: ptr.To(true),
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: started},
			},
			HostIP:    "10.0.3.17",
			PodIP:     "10.244.3.42",
			PodIPs:    []corev1.PodIP{{IP: "10.244.3.42"}},
			StartTime: &started,
			QOSClass:  corev1.PodQOSBurstable,
			ContainerStatuses: []corev1.ContainerStatus{
				status("web", "registry.example.com/shop/web:1.4.2"),
				status("sidecar", "registry.example.com/infra/proxy:2.0.1"),
			},
		},
	}
}
