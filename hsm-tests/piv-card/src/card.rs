//! APDU glue between vpcd (via `vpicc`) and the piv-authenticator applet, with the
//! fixes that make the `yubikey` crate accept it as a YubiKey 5.
//!
//! Never log APDU bodies here: VERIFY (INS 0x20) carries the PIN.  `--verbose` prints
//! the INS byte and the status word only.

use std::{cell::RefCell, rc::Rc};

use iso7816::command::{Command, CommandView};
use piv_authenticator::{Authenticator, Options};
use trussed_core::{try_syscall, types::Location, CryptoClient as _};

use crate::platform::{SharedClient, VirtClient};

/// Largest assembled command (after command chaining) and largest response.
const MAX_COMMAND: usize = 8192;
const MAX_RESPONSE: usize = 8192;

/// The full PIV AID; the yubikey crate selects with only its first 5 bytes.
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// Firmware version we claim: the yubikey crate accepts majors 4 and 5 only; 5.4.x
/// makes it pick the 3DES default management key, which is the applet's default.
const VERSION: [u8; 3] = [5, 4, 3];
/// GET DATA for the Key History object (5FC10C): hidden, see README.
const GET_DATA_KEY_HISTORY: [u8; 5] = [0x5C, 0x03, 0x5F, 0xC1, 0x0C];

/// vpicc's default ATR.
const ATR: &[u8] = vpicc::DEFAULT_ATR;

const INS_SELECT: u8 = 0xA4;
const INS_GET_DATA: u8 = 0xCB;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_GET_METADATA: u8 = 0xF7;
const INS_GET_SERIAL: u8 = 0xF8;
const INS_GET_VERSION: u8 = 0xFD;

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
const SW_CONDITIONS: [u8; 2] = [0x69, 0x85];
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
const SW_CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];

/// How much response the host can take in one APDU.
#[derive(Clone, Copy)]
struct Limit {
    /// Le (0 when absent; iso7816 already turns a short Le of 00 into 256).
    le: usize,
    extended: bool,
}

pub struct PivCard<'a> {
    client: Rc<RefCell<VirtClient<'a>>>,
    app: Option<Authenticator<SharedClient<'a>>>,
    serial: u32,
    verbose: bool,
    /// Command chaining (CLA bit 0x10) accumulator.
    chain: Option<Box<Command<MAX_COMMAND>>>,
    /// Response bytes not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
}

impl<'a> PivCard<'a> {
    pub fn new(client: VirtClient<'a>, serial: u32, verbose: bool) -> Self {
        let mut card = Self {
            client: Rc::new(RefCell::new(client)),
            app: None,
            serial,
            verbose,
            chain: None,
            pending: Vec::new(),
        };
        card.reset_applet("start");
        card
    }

    /// Drop the applet (its volatile security state: PIN verified, management key
    /// authenticated, challenge caches) and build a fresh one, as a power cycle would.
    pub fn reset_applet(&mut self, why: &str) {
        if self.verbose {
            eprintln!("piv-card: applet reset ({why})");
        }
        self.app = None;
        self.chain = None;
        self.pending.clear();
        {
            // Volatile trussed keys (unwrapped PIN/user keys) die with the "power".
            let mut client = self.client.borrow_mut();
            try_syscall!(client.delete_all(Location::Volatile)).ok();
        }
        self.app = Some(Authenticator::new(
            SharedClient(self.client.clone()),
            Options::default(),
        ));
    }

    fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return SW_WRONG_LENGTH.to_vec();
        }
        let (cla, ins) = (apdu[0], apdu[1]);

        if ins == INS_GET_RESPONSE && cla & 0x10 == 0 {
            let view = match CommandView::try_from(apdu) {
                Ok(v) => v,
                Err(_) => return SW_WRONG_LENGTH.to_vec(),
            };
            if self.pending.is_empty() {
                return SW_CONDITIONS.to_vec();
            }
            let rest = std::mem::take(&mut self.pending);
            return self.chunk(
                rest,
                Limit {
                    le: view.expected(),
                    extended: view.extended,
                },
            );
        }
        // Any other command abandons an unfetched response.
        self.pending.clear();

        let view = match CommandView::try_from(apdu) {
            Ok(v) => v,
            Err(iso7816::command::FromSliceError::InvalidClass) => {
                self.chain = None;
                return SW_CLA_NOT_SUPPORTED.to_vec();
            }
            Err(_) => {
                self.chain = None;
                return SW_WRONG_LENGTH.to_vec();
            }
        };

        if cla & 0x10 != 0 {
            // Chained command: collect, answer 9000, dispatch with the last piece.
            let ok = match &mut self.chain {
                None => match view.to_owned::<MAX_COMMAND>() {
                    Ok(c) => {
                        self.chain = Some(Box::new(c));
                        true
                    }
                    Err(_) => false,
                },
                Some(c) => c.extend_from_command_view(view).is_ok(),
            };
            if !ok {
                self.chain = None;
                return SW_WRONG_LENGTH.to_vec();
            }
            return SW_OK.to_vec();
        }

        let command: Box<Command<MAX_COMMAND>> = match self.chain.take() {
            Some(mut c) => {
                if c.extend_from_command_view(view).is_err() {
                    return SW_WRONG_LENGTH.to_vec();
                }
                c
            }
            None => match view.to_owned::<MAX_COMMAND>() {
                Ok(c) => Box::new(c),
                Err(_) => return SW_WRONG_LENGTH.to_vec(),
            },
        };
        // Le and the short/extended encoding come from the last APDU of a chain: the
        // assembled command claims `extended` (iso7816's extend_from_command_view sets
        // it), which would lift the 256-byte limit and overflow the host's buffer.
        let limit = Limit {
            le: view.expected(),
            extended: view.extended,
        };
        self.dispatch(ins, &command, limit)
    }

    fn dispatch(&mut self, ins: u8, command: &Command<MAX_COMMAND>, limit: Limit) -> Vec<u8> {
        match ins {
            INS_GET_VERSION => return self.chunk(VERSION.to_vec(), limit),
            INS_GET_SERIAL => return self.chunk(self.serial.to_be_bytes().to_vec(), limit),
            // The applet answers GET METADATA with an empty success the crate cannot parse;
            // "instruction not supported" makes the crate fall back.
            INS_GET_METADATA => return SW_INS_NOT_SUPPORTED.to_vec(),
            INS_GET_DATA if command.data().as_slice() == GET_DATA_KEY_HISTORY => {
                return SW_NOT_FOUND.to_vec();
            }
            INS_SELECT => return self.select(command, limit),
            _ => {}
        }
        self.call_applet(command.as_view(), limit)
    }

    fn select(&mut self, command: &Command<MAX_COMMAND>, limit: Limit) -> Vec<u8> {
        let aid: &[u8] = command.data();
        // Selecting anything (PIV again, or another applet) resets PIV's security state.
        self.reset_applet("select");
        let is_piv = command.p1 == 0x04
            && aid.len() >= 5
            && aid.len() <= PIV_AID.len()
            && PIV_AID.starts_with(aid);
        if !is_piv {
            return SW_NOT_FOUND.to_vec();
        }
        // Rewrite the (possibly truncated) AID to the full one the applet insists on,
        // keeping the caller's Le.
        let mut full = vec![0x00, INS_SELECT, 0x04, 0x00, PIV_AID.len() as u8];
        full.extend_from_slice(&PIV_AID);
        match command.expected() {
            0 => {}
            n if n >= 256 => full.push(0x00),
            n => full.push(n as u8),
        }
        let view = CommandView::try_from(full.as_slice()).expect("well-formed SELECT");
        self.call_applet(view, limit)
    }

    fn call_applet(&mut self, view: CommandView<'_>, limit: Limit) -> Vec<u8> {
        let app = self.app.as_mut().expect("applet exists between resets");
        let mut reply: Box<heapless::Vec<u8, MAX_RESPONSE>> = Box::default();
        match app.respond(view, reply.as_mut_view()) {
            Ok(()) => self.chunk(reply.to_vec(), limit),
            Err(status) => {
                let sw: [u8; 2] = status.into();
                sw.to_vec()
            }
        }
    }

    /// Return at most what the caller can take: Le, or 256 bytes when Le is absent (a
    /// YubiKey does the same; the applet would otherwise answer 61xx with no data).
    /// The remainder is announced with 61xx and fetched with GET RESPONSE.
    fn chunk(&mut self, mut data: Vec<u8>, limit: Limit) -> Vec<u8> {
        let max = match (limit.le, limit.extended) {
            (0, false) => 256,
            (0, true) => 65536,
            (n, _) => n,
        };
        if data.len() <= max {
            data.extend_from_slice(&SW_OK);
            return data;
        }
        self.pending = data.split_off(max);
        let remaining = self.pending.len();
        data.push(0x61);
        data.push(if remaining >= 256 { 0 } else { remaining as u8 });
        data
    }
}

impl vpicc::VSmartCard for PivCard<'_> {
    fn atr(&self) -> &[u8] {
        ATR
    }

    fn power_on(&mut self) {
        self.reset_applet("power on");
    }

    fn power_off(&mut self) {
        self.reset_applet("power off");
    }

    fn reset(&mut self) {
        self.reset_applet("reset");
    }

    fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = self.handle(apdu);
        if self.verbose {
            // INS and status word only: the body of VERIFY is the PIN.
            let ins = apdu.get(1).copied().unwrap_or(0);
            let n = response.len();
            let (sw1, sw2) = if n >= 2 {
                (response[n - 2], response[n - 1])
            } else {
                (0, 0)
            };
            eprintln!("piv-card: INS {ins:02X} -> {sw1:02X}{sw2:02X}");
        }
        response
    }
}
