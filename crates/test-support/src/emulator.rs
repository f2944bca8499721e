//! The Microsoft emulator (msemu) in process, on loopback.

use msemu::{Emulator, EmulatorHandle, Options, Seed};

use crate::install_crypto;

/// Starts the emulator with `seed` on a pre-bound 127.0.0.1:0 listener; its
/// base URL is [`EmulatorHandle::base_url`].
pub async fn start_emulator(seed: Seed, options: Options) -> EmulatorHandle {
    install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the emulator");
    Emulator::start(seed, options, listener, None)
        .await
        .expect("the emulator starts")
}

/// The demo tenant with every folder of every user empty: each mail a test
/// sees is one it added.
pub fn empty_demo_seed() -> Seed {
    let mut seed = Seed::demo();
    for tenant in &mut seed.tenants {
        for user in &mut tenant.users {
            for folder in &mut user.folders {
                folder.messages.clear();
            }
        }
    }
    seed
}

/// [`empty_demo_seed`] running with the default options.
pub async fn empty_demo_emulator() -> EmulatorHandle {
    start_emulator(empty_demo_seed(), Options::default()).await
}
