//! The trussed side: a virt platform with the backends piv-authenticator needs
//! (staging: chunked / wrap-key-to-file / hpke, trussed-auth, software RSA) and a
//! cloneable client handle so the applet can be dropped and re-created (card reset)
//! without losing the trussed client.
//!
//! TEST ONLY: the RNG is a seeded ChaCha8 (seed derived from the serial), so keys are
//! deterministic and nothing made here may ever be used as a real key.

use std::{cell::RefCell, rc::Rc, sync::mpsc, task::Poll, thread};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng as _;
use trussed::{
    backend::{Backend as _, BackendId},
    pipe::{ServiceEndpoint, TrussedChannel},
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl as _},
    service::{Service, ServiceResources},
    types::{Context, CoreContext},
    virt::{self, StoreConfig},
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request},
    mechanisms::Tdes,
    serde_extensions::{Extension, ExtensionClient},
    types::Location,
    ClientResult, CryptoClient, Error, FilesystemClient, FutureResult, PollClient,
};
use trussed_hpke::HpkeExtension;
use trussed_rsa_alloc::SoftwareRsa;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

#[derive(Debug, Clone, Copy)]
pub enum BackendIds {
    Staging,
    Auth,
    Rsa,
}

#[derive(Debug, Clone, Copy)]
pub enum ExtensionIds {
    Chunked,
    WrapKeyToFile,
    Hpke,
    Auth,
}

impl From<ExtensionIds> for u8 {
    fn from(id: ExtensionIds) -> u8 {
        match id {
            ExtensionIds::Chunked => 0,
            ExtensionIds::WrapKeyToFile => 1,
            ExtensionIds::Hpke => 2,
            ExtensionIds::Auth => 3,
        }
    }
}

impl TryFrom<u8> for ExtensionIds {
    type Error = Error;
    fn try_from(id: u8) -> Result<Self, Error> {
        Ok(match id {
            0 => Self::Chunked,
            1 => Self::WrapKeyToFile,
            2 => Self::Hpke,
            3 => Self::Auth,
            _ => return Err(Error::FunctionNotSupported),
        })
    }
}

/// Order matters: the first backend that does not answer `RequestNotAvailable` wins.
pub const BACKENDS: &[BackendId<BackendIds>] = &[
    BackendId::Custom(BackendIds::Staging),
    BackendId::Custom(BackendIds::Auth),
    BackendId::Custom(BackendIds::Rsa),
    BackendId::Core,
];

pub struct Dispatcher {
    staging: StagingBackend,
    auth: AuthBackend,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self {
            staging: StagingBackend::new(),
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
        }
    }
}

#[derive(Default)]
pub struct DispatchContext {
    staging: StagingContext,
    auth: AuthContext,
}

impl ExtensionDispatch for Dispatcher {
    type BackendId = BackendIds;
    type Context = DispatchContext;
    type ExtensionId = ExtensionIds;

    fn core_request<P: trussed::Platform>(
        &mut self,
        backend: &BackendIds,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            BackendIds::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
            BackendIds::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            BackendIds::Rsa => SoftwareRsa.request(&mut ctx.core, &mut (), request, resources),
        }
    }

    fn extension_request<P: trussed::Platform>(
        &mut self,
        backend: &BackendIds,
        extension: &ExtensionIds,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (BackendIds::Staging, ExtensionIds::Chunked) => {
                trussed::serde_extensions::ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::WrapKeyToFile) => {
                trussed::serde_extensions::ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::Hpke) => {
                trussed::serde_extensions::ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendIds::Auth, ExtensionIds::Auth) => {
                self.auth
                    .extension_request_serialized(core, &mut ctx.backends.auth, request, resources)
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<ChunkedExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Chunked;
}
impl ExtensionId<WrapKeyToFileExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::WrapKeyToFile;
}
impl ExtensionId<HpkeExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Hpke;
}
impl ExtensionId<AuthExtension> for Dispatcher {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Auth;
}

pub type VirtClient<'a> = trussed::ClientImplementation<'a, ChannelSyscall, Dispatcher>;

/// A cloneable handle on the one trussed client.  `piv_authenticator::Authenticator`
/// owns its client by value; handing it a `SharedClient` lets the glue drop the applet
/// (losing its volatile security state, as a real card does on reset) and build a new
/// one on the same trussed client.  Only one applet exists at a time.
#[derive(Clone)]
pub struct SharedClient<'a>(pub Rc<RefCell<VirtClient<'a>>>);

impl PollClient for SharedClient<'_> {
    fn request<Rq: trussed_core::api::RequestVariant>(
        &mut self,
        req: Rq,
    ) -> ClientResult<'_, Rq::Reply, Self> {
        {
            let mut inner = self.0.borrow_mut();
            // The request is queued by this call; the returned future only polls.
            let _queued = inner.request(req)?;
        }
        Ok(FutureResult::new(self))
    }

    fn poll(&mut self) -> Poll<Result<Reply, Error>> {
        self.0.borrow_mut().poll()
    }

    fn interrupt(&self) -> Option<&'static trussed_core::InterruptFlag> {
        self.0.borrow().interrupt()
    }
}

impl CryptoClient for SharedClient<'_> {}
impl FilesystemClient for SharedClient<'_> {}
impl Tdes for SharedClient<'_> {}

impl<E: Extension> ExtensionClient<E> for SharedClient<'_>
where
    Dispatcher: ExtensionId<E>,
{
    fn id() -> u8 {
        <Dispatcher as ExtensionId<E>>::ID.into()
    }
}

/// Our own platform (instead of `virt::with_platform`) only to seed the RNG per serial:
/// two cards started with different serials must not generate identical keys.
pub struct CardPlatform<'a> {
    rng: ChaCha8Rng,
    store: virt::Store<'a>,
    ui: virt::UserInterface,
}

impl<'a> trussed::Platform for CardPlatform<'a> {
    type R = ChaCha8Rng;
    type S = virt::Store<'a>;
    type UI = virt::UserInterface;

    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
    fn store(&self) -> virt::Store<'a> {
        self.store
    }
    fn user_interface(&mut self) -> &mut virt::UserInterface {
        &mut self.ui
    }
}

/// Wakes the service thread: one message per request (virt's own runner polls every
/// millisecond instead, which costs ~1 ms per trussed syscall and 1% CPU per idle card).
pub struct ChannelSyscall(mpsc::Sender<()>);

impl trussed::platform::Syscall for ChannelSyscall {
    fn syscall(&mut self) {
        let _ = self.0.send(());
    }
}

/// Runs `f` with a trussed client served by a service thread; returns when `f` returns
/// (dropping the client ends the service thread).
pub fn with_client<R>(
    mut store: StoreConfig<'_>,
    serial: u32,
    f: impl FnOnce(VirtClient<'_>) -> R,
) -> R {
    let mut seed = [42u8; 32];
    for (i, b) in serial.to_be_bytes().iter().enumerate() {
        seed[i] ^= b;
    }
    store.with_store(|store| {
        let platform = CardPlatform {
            rng: ChaCha8Rng::from_seed(seed),
            store,
            ui: virt::UserInterface::new(),
        };
        let channel = TrussedChannel::new();
        let (requester, responder) = channel.split().expect("fresh channel");
        let context = CoreContext::new("piv".try_into().expect("valid client id"));
        let mut endpoints = [ServiceEndpoint::new(responder, context, BACKENDS)];
        let mut service = Service::with_dispatch(platform, Dispatcher::new());
        let (tx, rx) = mpsc::channel::<()>();
        thread::scope(|s| {
            s.spawn(move || {
                while rx.recv().is_ok() {
                    service.process(&mut endpoints);
                }
            });
            f(VirtClient::new(requester, ChannelSyscall(tx), None))
        })
    })
}
