package admission

import (
	"context"
	"errors"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// NewNamespaceLister starts a namespace informer on client and returns its
// lister once the cache is filled. The informer stops when ctx is done.
// It needs list and watch on namespaces.
func NewNamespaceLister(ctx context.Context, client kubernetes.Interface) (NamespaceLister, error) {
	// No periodic resync: the handler only reads the cache.
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Core().V1().Namespaces()
	lister := inf.Lister()
	synced := inf.Informer().HasSynced
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced) {
		return nil, errors.New("namespace informer: cache not synced before the context ended")
	}
	return lister, nil
}
