package command

import (
	"context"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// recordingEngine is an EngineClient that records Log calls (other methods are not called).
type recordingEngine struct {
	pulumirpc.EngineClient
	log func(*pulumirpc.LogRequest)
}

func (r *recordingEngine) Log(_ context.Context, in *pulumirpc.LogRequest, _ ...grpc.CallOption) (*emptypb.Empty, error) {
	r.log(in)
	return &emptypb.Empty{}, nil
}
