//! The ADS gRPC service: what tonic generates for `AggregatedDiscoveryService`,
//! with a codec that hands each response to HTTP/2 as soon as it is encoded.
//!
//! tonic's default codec gathers responses into one buffer per stream until 32 KiB
//! and keeps that buffer, at its largest, for the stream's life: with a thousand
//! Envoys that was 64 MiB held for nothing. Encoding one response at a time keeps
//! each stream's buffer at the size of one response.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codec::{BufferSettings, Codec};
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use super::delta::{Delta, RESPONSE_BYTES};
use super::{AdsServer, Protocol, Responses, sotw::Sotw};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Room for one response of [`RESPONSE_BYTES`] and its header, so that the buffer
/// does not double past it; a larger response (one huge resource) grows it.
const ENCODE_BUFFER: usize = RESPONSE_BYTES + 1024;

/// The ADS service, to mount on a tonic server.
#[derive(Clone)]
pub struct AdsService {
    server: Arc<AdsServer>,
}

impl AdsService {
    pub(super) fn new(server: AdsServer) -> Self {
        AdsService {
            server: Arc::new(server),
        }
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<B> tonic::codegen::Service<http::Request<B>> for AdsService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        match request.uri().path() {
            SOTW_PATH => streaming::<Sotw, B>(server, request),
            DELTA_PATH => streaming::<Delta, B>(server, request),
            _ => Box::pin(async { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

/// Serves `request` as a stream of `P`.
fn streaming<P, B>(
    server: Arc<AdsServer>,
    request: http::Request<B>,
) -> BoxFuture<http::Response<tonic::body::Body>, Infallible>
where
    P: Protocol,
    P::Request: prost::Message + Default,
    P::Response: prost::Message,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    Box::pin(async move {
        let method = Method::<P>(server, PhantomData);
        Ok(Grpc::new(AdsCodec::default())
            .streaming(method, request)
            .await)
    })
}

/// One of the two ADS methods, served by its [`Protocol`].
struct Method<P>(Arc<AdsServer>, PhantomData<P>);

impl<P: Protocol> StreamingService<P::Request> for Method<P> {
    type Response = P::Response;
    type ResponseStream = Responses<P::Response>;
    type Future = std::future::Ready<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Streaming<P::Request>>) -> Self::Future {
        std::future::ready(Ok(Response::new(self.0.spawn_stream::<P>(request))))
    }
}

/// tonic's prost codec with [`ENCODE_BUFFER`] and no gathering of responses.
struct AdsCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for AdsCodec<T, U> {
    fn default() -> Self {
        AdsCodec(PhantomData)
    }
}

impl<T, U> Codec for AdsCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        // A yield threshold of one byte: every response goes out on its own.
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, 1))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::default())
    }
}
