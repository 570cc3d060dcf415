//! Keys to actions: one table per mode, no if/else chains in the handlers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{Action, Mode, View};

/// The action a key stands for in `mode` on `view`, if any.
pub fn action(key: KeyEvent, mode: &Mode, view: View) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::AskQuit);
    }
    match mode {
        Mode::Normal => normal(key, view),
        Mode::Help => Some(Action::Close),
        Mode::ConfirmQuit => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Some(Action::Quit),
            _ => Some(Action::Close),
        },
        Mode::Filter(_) | Mode::Command(_) | Mode::Confirm { .. } => text(key),
        Mode::Message(_) => Some(Action::Close),
    }
}

fn text(key: KeyEvent) -> Option<Action> {
    Some(match key.code {
        KeyCode::Enter => Action::Submit,
        KeyCode::Esc => Action::Close,
        KeyCode::Backspace => Action::Backspace,
        KeyCode::Char(c) => Action::Type(c),
        _ => return None,
    })
}

fn normal(key: KeyEvent, view: View) -> Option<Action> {
    use KeyCode::*;
    let shared = match key.code {
        Char('q') => Some(Action::AskQuit),
        Char('?') => Some(Action::Help),
        Char('f') => Some(Action::Freeze),
        Char('/') => Some(Action::StartFilter),
        Char(':') => Some(Action::StartCommand),
        Tab => Some(Action::NextView),
        BackTab => Some(Action::PrevView),
        Char(c @ '1'..='6') => View::ALL
            .get(c as usize - '1' as usize)
            .map(|&v| Action::Show(v)),
        Esc => Some(Action::Close),
        _ => None,
    };
    if shared.is_some() {
        return shared;
    }
    if view == View::Map {
        return Some(match key.code {
            Char('+') | Char('=') => Action::Zoom(true),
            Char('-') => Action::Zoom(false),
            Left | Char('h') => Action::Pan(-1, 0),
            Right | Char('l') => Action::Pan(1, 0),
            Up | Char('k') => Action::Pan(0, 1),
            Down | Char('j') => Action::Pan(0, -1),
            Char('0') => Action::ResetMap,
            _ => return None,
        });
    }
    Some(match key.code {
        Down | Char('j') => Action::Move(1),
        Up | Char('k') => Action::Move(-1),
        PageDown => Action::Move(10),
        PageUp => Action::Move(-10),
        Home | Char('g') => Action::Move(i64::MIN),
        End | Char('G') => Action::Move(i64::MAX),
        Left | Char('h') => Action::SortColumn(-1),
        Right | Char('l') => Action::SortColumn(1),
        Char('s') => Action::SortColumn(1),
        Char('i') => Action::InvertSort,
        Char('c') => Action::CloseShelter,
        Char('o') => Action::OpenShelter,
        Char('m') => Action::MarkFound,
        Char('a') => Action::AnswerHandled,
        Char('v') => Action::ConfirmAnswer,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_mean_different_things_by_mode_and_view() {
        assert_eq!(
            action(k(KeyCode::Char('q')), &Mode::Normal, View::Overview),
            Some(Action::AskQuit)
        );
        assert_eq!(
            action(k(KeyCode::Char('y')), &Mode::ConfirmQuit, View::Overview),
            Some(Action::Quit)
        );
        assert_eq!(
            action(k(KeyCode::Char('n')), &Mode::ConfirmQuit, View::Overview),
            Some(Action::Close)
        );
        // In a text field every letter is text, `q` included.
        let m = Mode::Command(String::new());
        assert_eq!(
            action(k(KeyCode::Char('q')), &m, View::Overview),
            Some(Action::Type('q'))
        );
        assert_eq!(
            action(k(KeyCode::Char('3')), &Mode::Normal, View::Log),
            Some(Action::Show(View::Unaccounted))
        );
        assert_eq!(
            action(k(KeyCode::Char('h')), &Mode::Normal, View::Map),
            Some(Action::Pan(-1, 0))
        );
        assert_eq!(
            action(k(KeyCode::Char('h')), &Mode::Normal, View::Shelters),
            Some(Action::SortColumn(-1))
        );
        assert_eq!(
            action(k(KeyCode::F(9)), &Mode::Normal, View::Shelters),
            None
        );
    }
}
