//! The shared context every handler sees: the state, the clock, keys, faults and counters.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::Options;
use crate::clock::Clock;
use crate::counters::Counters;
use crate::entra::keys::SigningKey;
use crate::faults::Faults;
use crate::state::State;

pub struct Ctx {
    pub state: Mutex<State>,
    pub clock: Clock,
    pub options: Options,
    pub keys: SigningKey,
    pub faults: Faults,
    pub counters: Arc<Counters>,
}

impl Ctx {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub type Shared = Arc<Ctx>;
