//! The ADS gRPC service: what tonic generates for `AggregatedDiscoveryService`, with
//! gRPC's message framing done here rather than by tonic's codec.
//!
//! tonic's codec keeps two buffers per stream for the stream's life, each at the size
//! of the largest message it ever carried: the receive buffer grows to Envoy's
//! largest request (an EDS subscription naming every cluster, tens of KiB), the send
//! buffer to the largest response. With a thousand Envoys that was some 50 MiB held
//! for nothing. Here a request is decoded from the bytes HTTP/2 delivered, gathered
//! only while a message is split across DATA frames, and each response is encoded
//! into an allocation of its own that HTTP/2 frees once written.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::Stream;
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, http};
use tonic::server::NamedService;
use tonic::{Request, Status};

use super::delta::Delta;
use super::{AdsServer, Protocol, Responses, sotw::Sotw};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// A gRPC message's prefix: one flag byte (compressed or not), then its length.
const PREFIX_BYTES: usize = 5;

/// The largest request accepted, as tonic's default.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

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

impl tonic::codegen::Service<http::Request<Body>> for AdsService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = match request.uri().path() {
            SOTW_PATH => streaming::<Sotw>(&self.server, request),
            DELTA_PATH => streaming::<Delta>(&self.server, request),
            _ => Status::unimplemented("").into_http(),
        };
        Box::pin(std::future::ready(Ok(response)))
    }
}

/// Serves `request` as a stream of `P`.
fn streaming<P: Protocol>(
    server: &AdsServer,
    request: http::Request<Body>,
) -> http::Response<Body> {
    // gantry announces no compression, so a client has none to use.
    if let Some(encoding) = request.headers().get("grpc-encoding")
        && encoding != "identity"
    {
        return Status::unimplemented(format!("message compression {encoding:?} is not supported"))
            .into_http();
    }
    let requests = Request::from_http(request.map(Requests::new));
    let responses = ResponseBody {
        responses: server.spawn_stream::<P>(requests),
        ended: false,
    };
    let mut response = http::Response::new(Body::new(responses));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The requests of one stream, decoded as their bytes arrive.
pub(super) struct Requests<T> {
    body: Body,
    /// Received bytes of messages not yet decoded. Emptied (its memory freed) whenever
    /// it holds no partial message, so a large request costs nothing after it.
    received: BytesMut,
    ended: bool,
    message: PhantomData<fn() -> T>,
}

impl<T: prost::Message + Default> Requests<T> {
    fn new(body: Body) -> Self {
        Requests {
            body,
            received: BytesMut::new(),
            ended: false,
            message: PhantomData,
        }
    }

    /// The next request, `None` once the client has closed its side. Cancel-safe:
    /// everything received is kept in `self`.
    pub(super) async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        loop {
            if let Some(message) = self.decode_received()? {
                return Poll::Ready(Ok(Some(message)));
            }
            if self.ended {
                return Poll::Ready(match self.received.is_empty() {
                    true => Ok(None),
                    false => Err(Status::internal("the stream ended inside a message")),
                });
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received.put(data);
                    }
                }
                Some(Err(status)) => return Poll::Ready(Err(status)),
                None => self.ended = true,
            }
        }
    }

    /// Decodes the first message in `received` if it is there whole.
    fn decode_received(&mut self) -> Result<Option<T>, Status> {
        let Some(prefix) = self.received.get(..PREFIX_BYTES) else {
            return Ok(None);
        };
        if prefix[0] != 0 {
            return Err(Status::unimplemented(
                "compressed messages are not supported",
            ));
        }
        let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if length > MAX_REQUEST_BYTES {
            return Err(Status::resource_exhausted(format!(
                "a request of {length} bytes is over the limit of {MAX_REQUEST_BYTES}"
            )));
        }
        let whole = PREFIX_BYTES + length;
        if self.received.len() < whole {
            // Room for exactly this message, not a doubling past it.
            self.received.reserve(whole - self.received.len());
            return Ok(None);
        }
        self.received.advance(PREFIX_BYTES);
        let message = T::decode(self.received.split_to(length).freeze())
            .map_err(|error| Status::internal(format!("undecodable request: {error}")))?;
        if self.received.is_empty() {
            self.received = BytesMut::new();
        }
        Ok(Some(message))
    }
}

/// A stream's responses as a gRPC body: each response its own DATA, then the status
/// in the trailers.
struct ResponseBody<R> {
    responses: Responses<R>,
    ended: bool,
}

impl<R: prost::Message> http_body::Body for ResponseBody<R> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let status = match ready!(Pin::new(&mut self.responses).poll_next(cx)) {
            Some(Ok(response)) => return Poll::Ready(Some(Ok(Frame::data(encode(&response))))),
            Some(Err(status)) => status,
            None => Status::ok(""),
        };
        self.ended = true;
        let mut trailers = http::HeaderMap::new();
        status.add_header(&mut trailers)?;
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// `message` with its gRPC prefix, in an allocation of exactly its size.
fn encode(message: &impl prost::Message) -> Bytes {
    let length = message.encoded_len();
    let mut bytes = Vec::with_capacity(PREFIX_BYTES + length);
    bytes.put_u8(0);
    bytes.put_u32(length as u32);
    message.encode_raw(&mut bytes);
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
    use std::collections::VecDeque;

    /// A request body delivering `chunks` as its DATA frames, one per poll.
    struct Chunks(VecDeque<Bytes>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
        }
    }

    fn requests(chunks: Vec<Bytes>) -> Requests<DeltaDiscoveryRequest> {
        Requests::new(Body::new(Chunks(chunks.into())))
    }

    fn request(nonce: &str) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            response_nonce: nonce.into(),
            resource_names_subscribe: (0..1000).map(|i| format!("cluster-{i}")).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn messages_are_decoded_across_and_within_frames_and_keep_no_buffer() {
        let (first, second) = (encode(&request("1")), encode(&request("2")));
        let mut both = first.to_vec();
        both.extend_from_slice(&second);
        // The first message split across three frames, the second in the last.
        let (a, rest) = both.split_at(3);
        let (b, c) = rest.split_at(first.len());
        let mut requests = requests(vec![
            Bytes::copy_from_slice(a),
            Bytes::copy_from_slice(b),
            Bytes::copy_from_slice(c),
        ]);
        assert_eq!(requests.message().await.unwrap(), Some(request("1")));
        assert_eq!(requests.message().await.unwrap(), Some(request("2")));
        assert_eq!(
            requests.received.capacity(),
            0,
            "the received bytes are freed"
        );
        assert_eq!(requests.message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bad_frame_ends_the_stream_with_a_status_that_says_why() {
        let whole = encode(&request("1"));
        let mut compressed = whole.to_vec();
        compressed[0] = 1;
        let mut oversized = whole.to_vec();
        oversized[1..5].copy_from_slice(&(MAX_REQUEST_BYTES as u32 + 1).to_be_bytes());
        let cases = [
            (compressed, tonic::Code::Unimplemented, "compressed"),
            (oversized, tonic::Code::ResourceExhausted, "over the limit"),
            (
                whole[..whole.len() - 1].to_vec(),
                tonic::Code::Internal,
                "inside a message",
            ),
            (
                vec![0, 0, 0, 0, 2, 0xff, 0xff],
                tonic::Code::Internal,
                "undecodable",
            ),
        ];
        for (bytes, code, says) in cases {
            let status = requests(vec![bytes.into()]).message().await.unwrap_err();
            assert_eq!(
                (status.code(), status.message().contains(says)),
                (code, true),
                "{status}"
            );
        }
    }
}
