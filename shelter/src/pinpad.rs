//! The kiosk's PIN pad for the strong mode: the resident types the card's PIN on the door
//! keypad, confirms with Enter, then taps the card. Only the number of digits is ever shown
//! or kept outside this type; an entry left alone is forgotten.

use std::time::Duration;

/// A key of the door keypad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadKey {
    /// A digit, `0`–`9`.
    Digit(u8),
    /// Backspace: the last digit.
    Back,
    /// Esc or Delete: the whole entry (never stops the node).
    Clear,
    /// Enter: the entry is the PIN for the next card.
    Enter,
}

/// The JPKI user-authentication PIN is four digits.
pub const PIN_DIGITS: usize = 4;

/// An entry or a confirmed PIN not used within this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);

/// What the pad shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PadView {
    /// Nothing typed.
    #[default]
    Idle,
    /// This many digits typed, not yet confirmed.
    Typing(usize),
    /// A PIN is confirmed and waits for the card.
    Ready,
}

/// The keypad's state. Times are the node's monotonic clock (time since it started).
#[derive(Debug, Default)]
pub struct PinPad {
    digits: String,
    ready: Option<String>,
    touched: Duration,
}

impl PinPad {
    /// Takes one key at `now`.
    pub fn key(&mut self, k: PadKey, now: Duration) {
        self.forget_stale(now);
        self.touched = now;
        match k {
            PadKey::Digit(d) if d < 10 && self.digits.len() < PIN_DIGITS => {
                self.ready = None;
                self.digits.push(char::from(b'0' + d));
            }
            PadKey::Digit(_) => {}
            PadKey::Back => {
                self.digits.pop();
            }
            PadKey::Clear => {
                self.digits.clear();
                self.ready = None;
            }
            PadKey::Enter if self.digits.len() == PIN_DIGITS => {
                self.ready = Some(std::mem::take(&mut self.digits));
            }
            PadKey::Enter => {}
        }
    }

    /// The confirmed PIN for the card being tapped now, once.
    pub fn take(&mut self, now: Duration) -> Option<String> {
        self.forget_stale(now);
        self.digits.clear();
        self.ready.take()
    }

    /// Forgets an entry or PIN left alone for [`FORGET_AFTER`]; true when it did.
    pub fn forget_stale(&mut self, now: Duration) -> bool {
        let stale = now.saturating_sub(self.touched) >= FORGET_AFTER
            && (self.ready.is_some() || !self.digits.is_empty());
        if stale {
            self.digits.clear();
            self.ready = None;
        }
        stale
    }

    /// What the screen shows.
    pub fn view(&self) -> PadView {
        match (&self.ready, self.digits.len()) {
            (Some(_), _) => PadView::Ready,
            (None, 0) => PadView::Idle,
            (None, n) => PadView::Typing(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn four_digits_and_enter_make_the_pin_for_one_card() {
        let mut p = PinPad::default();
        for d in [1, 2, 3] {
            p.key(PadKey::Digit(d), at(0));
        }
        p.key(PadKey::Enter, at(1));
        assert_eq!(p.view(), PadView::Typing(3), "three digits are not a PIN");
        p.key(PadKey::Digit(4), at(1));
        p.key(PadKey::Digit(5), at(1)); // a fifth is ignored
        p.key(PadKey::Enter, at(2));
        assert_eq!(p.view(), PadView::Ready);
        assert_eq!(p.take(at(3)).as_deref(), Some("1234"));
        assert_eq!(p.take(at(3)), None, "used once");
        assert_eq!(p.view(), PadView::Idle);
    }

    #[test]
    fn back_clear_and_time_forget() {
        let mut p = PinPad::default();
        p.key(PadKey::Digit(9), at(0));
        p.key(PadKey::Digit(8), at(0));
        p.key(PadKey::Back, at(0));
        assert_eq!(p.view(), PadView::Typing(1));
        p.key(PadKey::Clear, at(0));
        assert_eq!(p.view(), PadView::Idle);
        for d in [1, 2, 3, 4] {
            p.key(PadKey::Digit(d), at(10));
        }
        p.key(PadKey::Enter, at(10));
        assert!(!p.forget_stale(at(69)));
        assert!(
            p.forget_stale(at(70)),
            "a PIN left for a minute is forgotten"
        );
        assert_eq!(p.take(at(70)), None);
    }
}
