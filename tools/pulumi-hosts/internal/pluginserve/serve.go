// Package pluginserve starts a plugin's gRPC server the way the Pulumi engine expects: listen on a
// loopback port the kernel picks, print that port alone on the first line of stdout, and stop when
// the engine that started us goes away (its address is the first positional argument).
package pluginserve

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"google.golang.org/grpc"
)

// Run serves until the engine stops answering health checks or we are interrupted. register is
// called once with the server (and the engine address, "" when started by hand).
func Run(engineAddress string, register func(*grpc.Server) error) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	if engineAddress != "" {
		// The engine may die without telling us; the health check cancels ctx when it does.
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
			return fmt.Errorf("could not start health check of the engine at %s: %w", engineAddress, err)
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init:   register,
	})
	if err != nil {
		return fmt.Errorf("could not start the plugin's gRPC server: %w", err)
	}
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}
