//! The page's answer mode (issue 21): a household tells HQ, with the remote, that it needs
//! help here (and how many people), is safe at home, has evacuated elsewhere or has reached
//! the shelter. Shown only when `[bml]` names HQ's answer endpoint (`answer_url`).
//!
//! What a resident does, on the page that shows the household's order:
//!
//! 1. **Enter** (決定) opens the answer screen. The first time, it asks for the 8-digit answer
//!    code of the registration letter, typed with the ten-key and kept in NVRAM
//!    ([`CODE_NVRAM`], with the household number it belongs to) like the household number.
//! 2. A **colour key**, as on the reference box and the letter: red need help here, green
//!    safe at home, yellow evacuated elsewhere, blue reached the shelter. The blue key only
//!    switches language outside the answer screen.
//! 3. For red, how many people (digits, Enter; Enter alone is one person).
//! 4. **Enter** again sends it; **Back** (戻る) cancels at any step (and deletes a digit
//!    while typing).
//!
//! The page sends it with `browser.transmitTextDataOverIP(answer_url, line, "EUC-JP")`, the
//! line of HQ's `POST /answer/tv` (`v1 <town> <household> <code> <answer> [<people>]`, see
//! `evac-hq`'s `answers::tv`), and shows HQ's word back in the household's language under the
//! order, which stays on screen. A refused code is forgotten, so the next answer asks for it
//! again.

use thiserror::Error;

/// The NVRAM block the answer code is kept in: `U:4B,U:4B`, the household number it was typed
/// for and the code as a number (a code for another number is not used).
pub const CODE_NVRAM: &str = "nvram://local/1";
/// The longest answer URL the page takes.
pub const MAX_URL: usize = 200;

/// Where the page sends answers, and the town it answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerPage {
    url: String,
    town: String,
}

/// Why an answer URL cannot go on the page.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AnswerUrlError {
    /// Not `https://`: the answer code must not travel in clear.
    #[error("answer_url {0:?}: must start with https://")]
    NotHttps(String),
    /// A character that cannot stand in the page's script, or too long.
    #[error(
        "answer_url {0:?}: printable ASCII without quotes, backslashes, < > or &, at most 200 bytes"
    )]
    Unsafe(String),
}

impl AnswerPage {
    /// The page's answer mode for `town`, sending to `url` (HQ's `/answer/tv`).
    pub fn new(url: &str, town: &evac_protocol::TownId) -> Result<AnswerPage, AnswerUrlError> {
        if !url.starts_with("https://") || url.len() <= "https://".len() {
            return Err(AnswerUrlError::NotHttps(url.to_owned()));
        }
        // The URL goes into a string literal of the page's script, inside CDATA.
        let safe = url.len() <= MAX_URL
            && url
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"'\\<>&".contains(&b));
        if !safe {
            return Err(AnswerUrlError::Unsafe(url.to_owned()));
        }
        Ok(AnswerPage {
            url: url.to_owned(),
            // A town id is a slug (a-z, 0-9, '-'): safe in the script and in HQ's line.
            town: town.as_str().to_owned(),
        })
    }

    /// HQ's endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The page's script with this endpoint and town in it.
    pub(super) fn fill(&self, script: &str) -> String {
        script
            .replace("\"ANSWER_URL\"", &format!("\"{}\"", self.url))
            .replace("\"ANSWER_TOWN\"", &format!("\"{}\"", self.town))
            .replace("\"CODE_NVRAM\"", &format!("\"{CODE_NVRAM}\""))
    }
}

/// The answer screens' functions (ECMAScript 2nd edition, as the page's).
pub(super) const SCRIPT: &str = r#"
function readCode() {
  var a = browser.readPersistentArray("CODE_NVRAM", "U:4B,U:4B");
  if (a == null) return -1;
  if (a[0] != num || num <= 0) return -1;
  return a[1];
}
function saveCode(h, c) {
  var a = new Array(2); a[0] = h; a[1] = c;
  browser.writePersistentArray("CODE_NVRAM", "U:4B,U:4B", a);
}
function digits(s) {
  var n = 0; var i;
  for (i = 0; i < s.length; i++) n = n * 10 + (s.charCodeAt(i) - 48);
  return n;
}
function codeText(c) {
  var s = "" + (100000000 + c);
  return s.substring(1, 9);
}
function entryCode() {
  if (entry.length <= 4) return entry + "_";
  return entry.substring(0, 4) + "-" + entry.substring(4, entry.length) + "_";
}
function kindName(k) {
  if (k == 1) return tr("助けが必要", "たすけが ひつよう", "Need help here");
  if (k == 2) return tr("自宅で無事", "いえで ぶじ", "Safe at home");
  if (k == 3) return tr("自宅以外に避難した（親せき・車など）", "ほかの ところに にげた（しんせき・くるま など）", "Evacuated elsewhere (relative, car, other town)");
  return tr("避難所に着いた", "ひなんじょに ついた", "Reached the shelter");
}
function wire(k) {
  if (k == 1) return "need_help";
  if (k == 2) return "safe_at_home";
  if (k == 3) return "evacuated_elsewhere";
  return "at_shelter";
}
function saidText(r) {
  if (r == 1) return tr("受け付けました（自己申告として役場に届きました）", "うけつけました（じぶんで しらせた ことと して とどきました）", "Answer received (self-reported)");
  if (r == 2) return tr("受け付けました。職員が確認します", "うけつけました。まちの ひとが たしかめます", "Answer received: an officer must confirm it");
  if (r == 3) return tr("世帯番号か回答コードが違います。決定ボタンでもう一度", "ばんごうが ちがいます。けっていで もう いちど", "Wrong household number or answer code. Enter: try again");
  if (r == 4) return tr("送信が多すぎます。しばらくしてからもう一度", "おくりすぎです。すこし まって ください", "Too many answers: try again later");
  if (r == 6) return tr("役場で保存できませんでした。もう一度送ってください", "まちで しまえませんでした。もう いちど おくって ください", "HQ could not store it: send it again");
  if (r == 7) return tr("返事がわかりません。届いていないかもしれません", "へんじが わかりません。とどいて いない かも しれません", "HQ's reply was not understood: it may not have arrived");
  return tr("役場に届きませんでした。避難所や電話でも知らせてください", "まちに とどきませんでした。ひなんじょや でんわで しらせて ください", "Could not reach HQ: tell a shelter or call the town");
}
function answerScreen() {
  blank();
  put("ft", tr("戻る: やめる", "もどる: やめる", "Back: cancel"));
  if (mode == 1) {
    put("hd", tr("回答コードを入力してください", "こたえる ばんごうを いれて ください", "Enter your answer code"));
    put("lv", entryCode());
    put("l1", tr("登録のお知らせに書かれた8けたの数字です", "とうろくの てがみに ある 8けたの すうじ です", "The 8 digits on your registration letter"));
    put("l2", tr("数字ボタンで入力し、決定ボタンを押してください", "すうじを おして、けっていを おして ください", "Use the digit keys, then press Enter"));
    return;
  }
  if (mode == 2) {
    put("hd", tr("世帯番号 ", "いえの ばんごう ", "Household No. ") + num + tr(" 今の様子を役場に知らせる", " いまの ようすを まちに しらせる", ": tell the town how you are"));
    put("lv", tr("色のボタンを押してください", "いろの ボタンを おして ください", "Press a colour key"));
    put("l1", tr("赤: ", "あか: ", "Red: ") + kindName(1));
    put("l2", tr("緑: ", "みどり: ", "Green: ") + kindName(2));
    put("l3", tr("黄: ", "きいろ: ", "Yellow: ") + kindName(3));
    put("l4", tr("青: ", "あお: ", "Blue: ") + kindName(4));
    put("l5", tr("自分で知らせた情報として役場に届きます", "じぶんで しらせた ことと して まちに とどきます", "It reaches the town as self-reported"));
    return;
  }
  if (mode == 3) {
    put("hd", tr("助けが必要な人数を入力してください", "たすけが いる ひとは なんにん ですか", "How many people need help?"));
    put("lv", entry + "_");
    put("l1", tr("数字ボタンで入力し決定（1人ならそのまま決定）", "すうじを おして けってい（ひとりなら そのまま けってい）", "Digits, then Enter (Enter alone: one person)"));
    return;
  }
  put("hd", tr("この内容で送ります", "これを おくります", "Send this answer?"));
  var what = kindName(kind);
  if (kind == 1) what = what + tr(" " + people + "人", " " + people + "にん", ": " + people);
  put("lv", what);
  put("l1", tr("決定ボタン: 送る", "けってい: おくる", "Enter: send"));
}
function startAnswer() {
  entry = "";
  if (readCode() < 0) mode = 1; else mode = 2;
  answerScreen();
}
function sendAnswer() {
  var line = "v1 " + ansTown + " " + num + " " + codeText(readCode()) + " " + wire(kind);
  if (kind == 1) line = line + " " + people;
  blank();
  put("hd", tr("送信中…", "おくって います…", "Sending…"));
  var r = browser.transmitTextDataOverIP(ansUrl, line, "EUC-JP");
  var res = 5;
  if (r != null && r[0] == 1) {
    var w = "" + r[2];
    if (w.indexOf("accepted") == 0) res = 1;
    else if (w.indexOf("confirm") == 0) res = 2;
    else if (w.indexOf("refused") == 0) { res = 3; saveCode(0, 0); }
    else if (w.indexOf("limited") == 0) res = 4;
    else if (w.indexOf("unavailable") == 0) res = 6;
    else res = 7;
  }
  said = res;
  mode = 0;
  show();
}
function answerKey(k) {
  if (k == 19) {
    if ((mode == 1 || mode == 3) && entry.length > 0) { entry = entry.substring(0, entry.length - 1); answerScreen(); return; }
    mode = 0; show(); return;
  }
  if (mode == 1 || mode == 3) {
    if (k >= 5 && k <= 14) {
      if ((mode == 1 && entry.length < 8) || (mode == 3 && entry.length < 2)) entry = entry + (k - 5);
      answerScreen();
      return;
    }
    if (k != 18) return;
    if (mode == 1) {
      if (entry.length == 8) { saveCode(num, digits(entry)); mode = 2; }
      entry = "";
      answerScreen();
      return;
    }
    people = 1;
    if (entry != "") people = digits(entry);
    entry = "";
    if (people >= 1) mode = 4;
    answerScreen();
    return;
  }
  if (mode == 2) {
    if (k == 22) kind = 1;
    else if (k == 23) kind = 2;
    else if (k == 24) kind = 3;
    else if (k == 21) kind = 4;
    else return;
    entry = "";
    if (kind == 1) mode = 3; else mode = 4;
    answerScreen();
    return;
  }
  if (mode == 4 && k == 18) sendAnswer();
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_https_url_fit_for_the_script_goes_on_the_page() {
        let town: evac_protocol::TownId = "minato".parse().unwrap_or_else(|e| panic!("{e}"));
        let ok = AnswerPage::new("https://hq.example:8443/answer/tv", &town);
        assert_eq!(
            ok.map(|p| p.url().to_owned()),
            Ok("https://hq.example:8443/answer/tv".to_owned())
        );
        for (bad, https) in [
            ("http://hq.example/answer/tv", false),
            ("https://", false),
            ("hq.example", false),
            ("https://hq.example/\";alert(1);\"", true),
            ("https://hq.example/]]></script>", true),
            ("https://hq.example/a b", true),
            ("https://hq.example/日本", true),
        ] {
            let e = AnswerPage::new(bad, &town).err();
            assert_eq!(
                matches!(e, Some(AnswerUrlError::Unsafe(_))),
                https,
                "{bad}: {e:?}"
            );
            assert!(e.is_some(), "{bad}");
        }
        let long = format!("https://hq.example/{}", "a".repeat(MAX_URL));
        assert!(AnswerPage::new(&long, &town).is_err());
    }
}
