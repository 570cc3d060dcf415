//! The startup module (0x0000): `startup.bml`, the page a stock TV runs when the viewer
//! presses `d` on the evac service.
//!
//! ARIB's A profile: EUC-JP, 960×540, ECMAScript 2nd edition as BML restricts it (no array or
//! object literals, no `let`, no JSON, no `Math`: integer division is done by hand). The page keeps the household number typed with the remote in
//! `nvram://local/0` (`U:4B`, 0 = none), reads the status module for the tables' age and the
//! area size, loads its own area's module and shows the household's order in Japanese, easy
//! Japanese or English (blue key). Digits start a new number at any time, Enter stores it.
//! With no number stored, it reads the postal code the viewer set up on the TV
//! (`nvram://receiverinfo/zipcode`, `S:7B`) and shows that district's orders from module
//! 0x0002 ([`super::postal`]) above the prompt; with no code set, or none in the table, only
//! the prompt. When its area's module, the status or the postal module gets a new version
//! (ModuleUpdated), the page reads the tables again.
//! With `[bml] answer_url`, Enter on a household's page opens the answer mode
//! ([`super::answer`]).

use evac_protocol::Hazard;

use super::answer::AnswerPage;
use super::postal::NO_EXPIRY;
use super::table::{LIFTED, NOT_A_HOUSEHOLD, UNCONFIRMED, euc_jp, multipart};
use crate::render::{Language, hazard_name};

/// The NVRAM block the household number is kept in.
pub const NVRAM_BLOCK: &str = "nvram://local/0";
/// Where a TV keeps the postal code the viewer set up (7 ASCII digits).
pub const ZIPCODE: &str = "nvram://receiverinfo/zipcode";

const SCRIPT: &str = r#"
var lang = 0;
var num = 0;
var typed = "";
var typing = 0;
var ansUrl = "ANSWER_URL";
var ansTown = "ANSWER_TOWN";
var mode = 0;
var kind = 0;
var people = 1;
var entry = "";
var said = 0;
function put(id, s) { document.getElementById(id).firstChild.data = s; }
function tr(ja, easy, en) { if (lang == 1) return easy; if (lang == 2) return en; return ja; }
function div(a, b) { return (a - a % b) / b; }
function hex4(n) {
  var h = "0123456789abcdef"; var s = ""; var i;
  for (i = 0; i < 4; i++) { s = h.charAt(n % 16) + s; n = div(n, 16); }
  return s;
}
function nowKey() {
  var d = new Date();
  return ((((d.getUTCFullYear() - 2000) * 12 + d.getUTCMonth()) * 31 + d.getUTCDate() - 1) * 24 + d.getUTCHours()) * 60 + d.getUTCMinutes();
}
function two(n) { if (n < 10) return "0" + n; return "" + n; }
function when(m, d, hh, mm) {
  return tr(m + "月" + d + "日 " + hh + "時" + two(mm) + "分", m + "がつ" + d + "にち " + hh + "じ" + mm + "ふん", two(hh) + ":" + two(mm) + " (" + d + "/" + m + ")");
}
function band(c) { document.getElementById("lv").normalStyle.backgroundColorIndex = c; }
function blank() {
  put("hd", "\u3000"); put("lv", "\u3000"); put("l1", "\u3000"); put("l2", "\u3000"); put("l3", "\u3000"); put("l4", "\u3000"); put("l5", "\u3000"); put("an", "\u3000");
  band(12);
}
function help() {
  put("ft", tr("数字と決定: 世帯番号の変更  青: やさしい日本語/English", "すうじと けってい: ばんごうを かえる  あお: English", "Digits + Enter: change number  Blue: 日本語"));
}
function readNum() {
  var a = browser.readPersistentArray("NVRAM", "U:4B");
  if (a == null) return 0;
  return a[0];
}
function saveNum(n) {
  var a = new Array(1); a[0] = n;
  browser.writePersistentArray("NVRAM", "U:4B", a);
}
function prompt() {
  blank();
  put("hd", tr("世帯番号を入力してください", "いえの ばんごうを いれて ください", "Enter your household number"));
  put("l1", typed + "_");
  put("l2", tr("リモコンの数字ボタンで入力し、決定ボタンを押してください", "リモコンの すうじを おして、けっていを おして ください", "Use the digit keys, then press Enter"));
  help();
}
function cannot(why) {
  put("lv", tr("確認できません", "わかりません", "Cannot confirm"));
  band(8);
  put("l1", why);
  put("l2", tr("ラジオ・防災無線・市町村の情報も確認してください", "ラジオや まちの ほうそうも きいて ください", "Check the radio and the town's loudspeakers too"));
}
function showLevel(level) {
  if (level == 3) { band(1); put("lv", tr("警戒レベル3 高齢者等避難", "レベル3 おとしよりなどは にげて ください", "Level 3: Elderly and others evacuate")); }
  if (level == 4) { band(13); put("lv", tr("警戒レベル4 避難指示", "レベル4 みんな にげて ください", "Level 4: Evacuation order")); }
  if (level == 5) { band(0); put("lv", tr("警戒レベル5 緊急安全確保", "レベル5 いのちを まもって ください", "Level 5: Emergency, secure your safety now")); }
}
function readZip() {
  var a = browser.readPersistentArray("ZIPCODE", "S:7B");
  if (a == null) return -1;
  var s = "" + a[0];
  if (s.length != 7) return -1;
  var n = 0; var i; var c;
  for (i = 0; i < 7; i++) {
    c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
function zipText(z) {
  var s = "" + (10000000 + z);
  return s.substring(1, 4) + "-" + s.substring(4, 8);
}
function district() {
  var z = readZip();
  if (z < 0) return 0;
  var zt = new BinaryTable("/40/0002/zips.bin", "0,U:4B,U:1B,U:1B,U:1B,U:4B,U:2B,U:1B,S:1V");
  if (zt == null) return 0;
  var r = -1; var i;
  for (i = 0; i < zt.nrow && r < 0; i++) if (zt.toNumber(i, 0) == z) r = i;
  if (r < 0) return 0;
  blank();
  help();
  put("hd", tr("〒", "〒", "Postal code ") + zipText(z) + " " + zt.toString(r, 7) + tr(" の避難情報", " の ひなんの じょうほう", ""));
  put("l4", tr("世帯番号を入力してください", "いえの ばんごうを いれて ください", "Enter your household number") + tr("（世帯ごとの避難先を表示します）", "（いえごとの にげる ところを だします）", " to see your own shelter"));
  put("l5", typed + "_");
  var level = zt.toNumber(r, 1);
  var st = new BinaryTable("/40/0001/status.bin", "0,U:4B,U:4B,U:4B");
  if (st == null || st.nrow < 1) { cannot(tr("情報がまだ届いていません", "じょうほうが まだ きて いません", "No information received yet")); return 1; }
  var now = nowKey();
  if (level == UNCONFIRMED) { cannot(tr("この地区の情報を確認できません", "この ちくの じょうほうが たしかめられません", "Cannot confirm the information for this district")); return 1; }
  if (now >= st.toNumber(0, 0)) { cannot(tr("情報が古くなっています", "じょうほうが ふるく なって います", "The information is out of date")); return 1; }
  if (level == 0) {
    put("lv", tr("この地区への避難指示等はありません", "この ちくへの ひなんの しじは ありません", "No order for this district"));
    band(10);
    return 1;
  }
  if (level == LIFTED) {
    put("lv", tr("この地区の避難指示等は解除されました", "この ちくの ひなんの しじは おわりました", "The orders for this district have been lifted"));
    band(10);
    return 1;
  }
  if (zt.toNumber(r, 4) != NO_EXPIRY && now >= zt.toNumber(r, 4)) { cannot(tr("この指示の期限が過ぎています", "この しじの きげんが すぎました", "This order has expired")); return 1; }
  showLevel(level);
  var hz = hazardName(zt.toNumber(r, 2));
  if (zt.toNumber(r, 3) == 1) hz = tr("【訓練】", "【くんれん】", "[DRILL] ") + hz;
  put("l3", hz + tr("（地区内で最も高いレベル）", "（この ちくで いちばん たかい レベル）", " (the highest level in this district)"));
  var first = zt.toNumber(r, 5);
  var count = zt.toNumber(r, 6);
  var sh = new BinaryTable("/40/0002/zsh.bin", "0,S:1V");
  if (sh == null || count == 0) {
    put("l1", tr("すぐに高い所や近くの安全な場所へ避難してください", "すぐに たかい ところへ にげて ください", "Go to high ground or the nearest safe place now"));
    return 1;
  }
  var names = ""; var more = "";
  for (i = 0; i < count && first + i < sh.nrow; i++) {
    if (i < 2) { if (i > 0) names = names + tr("、", "、", ", "); names = names + sh.toString(first + i, 0); }
    else if (i < 4) { if (i > 2) more = more + tr("、", "、", ", "); more = more + sh.toString(first + i, 0); }
  }
  if (count > 4) more = more + tr(" ほか" + (count - 4) + "か所", " ほか " + (count - 4), " and " + (count - 4) + " more");
  put("l1", tr("避難先: ", "にげる ところ: ", "Shelters: ") + names);
  if (more != "") put("l2", more);
  return 1;
}
function show() {
  showOrder();
  if (ansUrl == "" || num <= 0 || typing) return;
  if (said > 0) put("an", saidText(said));
  else put("an", tr("決定ボタン: 「無事です」「助けて」を役場に知らせる", "けってい: 「ぶじです」「たすけて」を まちに しらせる", "Enter: tell the town you are safe or need help"));
}
function showOrder() {
  if (typing) { prompt(); return; }
  if (num <= 0) { if (district() == 0) prompt(); return; }
  blank();
  help();
  put("hd", tr("世帯番号 ", "いえの ばんごう ", "Household No. ") + num);
  var st = new BinaryTable("/40/0001/status.bin", "0,U:4B,U:4B,U:4B");
  if (st == null || st.nrow < 1) { cannot(tr("情報がまだ届いていません", "じょうほうが まだ きて いません", "No information received yet")); return; }
  var stale = st.toNumber(0, 0);
  var area = st.toNumber(0, 2);
  var now = nowKey();
  var a = div(num, area);
  var base = "/40/" + hex4(256 + a) + "/";
  document.getElementById("upd").moduleRef = "/40/" + hex4(256 + a);
  var t = new BinaryTable(base + "orders.bin", "0,U:1B,U:1B,U:1B,U:1B");
  var row = num - a * area;
  var level = NOT_A_HOUSEHOLD;
  if (t != null && row < t.nrow) level = t.toNumber(row, 0);
  if (level == NOT_A_HOUSEHOLD) {
    put("lv", tr("この番号の世帯はありません", "この ばんごうの いえは ありません", "No household with this number"));
    put("l1", tr("番号を確かめて、もう一度入力してください", "ばんごうを たしかめて ください", "Check the number and enter it again"));
    return;
  }
  if (level == UNCONFIRMED) { cannot(tr("この世帯の情報を確認できません", "あなたの いえの じょうほうが たしかめられません", "Cannot confirm the information for your household")); return; }
  if (now >= stale) { cannot(tr("情報が古くなっています", "じょうほうが ふるく なって います", "The information is out of date")); return; }
  if (level == 0) {
    put("lv", tr("あなたの世帯への避難指示等はありません", "あなたの いえへの ひなんの しじは ありません", "No order for your household"));
    band(10);
    return;
  }
  if (level == LIFTED) {
    put("lv", tr("避難指示等は解除されました", "ひなんの しじは おわりました", "Your order has been lifted"));
    band(10);
    return;
  }
  var shi = t.toNumber(row, 1);
  var walk = t.toNumber(row, 2);
  var ni = t.toNumber(row, 3);
  var nt = new BinaryTable(base + "notices.bin", "0,U:1B,U:1B,U:4B,U:1B,U:1B,U:1B,U:1B,U:1B,U:1B,U:1B,U:1B,U:1B");
  if (nt == null || ni >= nt.nrow) { cannot(" "); return; }
  if (now >= nt.toNumber(ni, 2)) { cannot(tr("この指示の期限が過ぎています", "この しじの きげんが すぎました", "This order has expired")); return; }
  showLevel(level);
  var hz = nt.toNumber(ni, 0);
  if (nt.toNumber(ni, 1) == 1) put("hd", tr("【訓練】", "【くんれん】", "[DRILL] ") + tr("世帯番号 ", "いえの ばんごう ", "Household No. ") + num);
  if (shi == 255) {
    put("l1", tr("すぐに高い所や近くの安全な場所へ避難してください", "すぐに たかい ところへ にげて ください", "Go to high ground or the nearest safe place now"));
  } else {
    var sh = new BinaryTable(base + "shelters.bin", "0,S:1V,S:1V");
    if (sh != null && shi < sh.nrow) {
      put("l1", tr("避難先: ", "にげる ところ: ", "Shelter: ") + sh.toString(shi, 0));
      put("l2", tr("住所: ", "ばしょ: ", "Address: ") + sh.toString(shi, 1));
    }
    if (walk != 255) put("l3", tr("徒歩 約", "あるいて やく ", "About ") + (walk * 20) + tr("m", "メートル", " m on foot"));
  }
  put("l4", hazardName(hz) + tr(" 発令 ", " でた じかん ", ", issued ") + when(nt.toNumber(ni, 3), nt.toNumber(ni, 4), nt.toNumber(ni, 5), nt.toNumber(ni, 6)));
  if (nt.toNumber(ni, 7) == 1) put("l5", tr("予想される時刻 ", "きけんが くる じかん ", "Expected at ") + when(nt.toNumber(ni, 8), nt.toNumber(ni, 9), nt.toNumber(ni, 10), nt.toNumber(ni, 11)));
}
function updated() {
  if (document.currentEvent.status == 0 || document.currentEvent.status == 2) show();
}
function key() {
  var k = document.currentEvent.keyCode;
  if (mode > 0) { answerKey(k); return; }
  if (k >= 5 && k <= 14) {
    if (typing == 0) { typing = 1; typed = ""; }
    if (typed.length < 9) typed = typed + (k - 5);
    prompt();
    return;
  }
  if (k == 18 && typing == 1) {
    var n = 0; var i;
    for (i = 0; i < typed.length; i++) n = n * 10 + (typed.charCodeAt(i) - 48);
    typing = 0;
    if (n > 0) { num = n; saveNum(n); said = 0; }
    show();
    return;
  }
  if (k == 19 && typing == 1) { typing = 0; show(); return; }
  if (k == 18 && ansUrl != "" && num > 0) { startAnswer(); return; }
  if (k == 21) { lang = (lang + 1) % 3; show(); return; }
}
function init() {
  document.getElementById("k").focus();
  num = readNum();
  show();
}
"#;

fn hazard_function() -> String {
    let mut f = String::from("function hazardName(c) {\n");
    for h in Hazard::ALL {
        f.push_str(&format!(
            "  if (c == {}) return tr(\"{}\", \"{}\", \"{}\");\n",
            h.code(),
            hazard_name(h, Language::Japanese),
            hazard_name(h, Language::EasyJapanese),
            hazard_name(h, Language::English)
        ));
    }
    f.push_str("  return \"\";\n}\n");
    f
}

fn line(id: &str, top: u32, height: u32, size: u32) -> String {
    format!(
        "<p id=\"{id}\" style=\"left:40px;top:{top}px;width:880px;height:{height}px;font-size:{size}px;line-height:{height}px;\">\u{3000}</p>\n"
    )
}

/// The text of `startup.bml` (UTF-8 here; [`startup_module`] encodes it), with the answer
/// mode when `answer` says where answers go.
pub fn startup_bml(answer: Option<&AnswerPage>) -> String {
    let script = match answer {
        Some(a) => a.fill(&(SCRIPT.to_owned() + super::answer::SCRIPT)),
        None => SCRIPT
            .replace("\"ANSWER_URL\"", "\"\"")
            .replace("\"ANSWER_TOWN\"", "\"\""),
    };
    let script = script
        .replace("NOT_A_HOUSEHOLD", &NOT_A_HOUSEHOLD.to_string())
        .replace("LIFTED", &LIFTED.to_string())
        .replace("UNCONFIRMED", &UNCONFIRMED.to_string())
        .replace("NO_EXPIRY", &NO_EXPIRY.to_string())
        .replace("\"ZIPCODE\"", &format!("\"{ZIPCODE}\""))
        .replace("\"NVRAM\"", &format!("\"{NVRAM_BLOCK}\""));
    let mut body = String::new();
    body.push_str(&line("hd", 20, 40, 28));
    body.push_str(
        "<p id=\"lv\" style=\"left:40px;top:80px;width:880px;height:72px;font-size:36px;line-height:72px;color-index:7;background-color-index:12;\">\u{3000}</p>\n",
    );
    body.push_str(&line("l1", 170, 48, 32));
    body.push_str(&line("l2", 226, 40, 26));
    body.push_str(&line("l3", 274, 40, 26));
    body.push_str(&line("l4", 322, 40, 24));
    body.push_str(&line("l5", 370, 40, 24));
    body.push_str(&line("an", 418, 40, 24));
    body.push_str(&line("ft", 470, 36, 20));
    format!(
        r#"<?xml version="1.0" encoding="EUC-JP" ?>
<!DOCTYPE bml PUBLIC "+//ARIB STD-B24:1999//DTD VERSION 1.0//EN" "http://www.arib.or.jp/B24/DTD/bml_1_0.dtd">
<?bml bml-version="100.0" ?>
<bml>
<head>
<title>避難情報 evac</title>
<script><![CDATA[{script}{hazard}]]></script>
<style><![CDATA[
body {{ resolution: 960x540; display-aspect-ratio: 16v9; used-key-list: basic data-button numeric-tuning; background-color-index: 16; }}
p {{ color-index: 7; }}
]]></style>
</head>
<body onload="init();">
<div id="k" style="left:0px;top:0px;width:960px;height:540px;nav-index:0;background-color-index:16;" onkeydown="key();">
{body}</div>
<beitem id="upd" type="ModuleUpdated" onoccur="updated();" subscribe="subscribe"/>
<beitem id="st" type="ModuleUpdated" onoccur="updated();" module_ref="/40/0001" subscribe="subscribe"/>
<beitem id="zp" type="ModuleUpdated" onoccur="updated();" module_ref="/40/0002" subscribe="subscribe"/>
</body>
</bml>
"#,
        hazard = hazard_function(),
    )
}

/// Module 0x0000: `startup.bml` in a `multipart/mixed` entity, EUC-JP.
pub fn startup_module(answer: Option<&AnswerPage>) -> Vec<u8> {
    let bml = euc_jp(&startup_bml(answer));
    multipart(&[("startup.bml", "text/X-arib-bml; charset=euc-jp", &bml)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_es2_and_euc_jp() {
        let town: evac_protocol::TownId = "minato".parse().unwrap();
        let answer = AnswerPage::new("https://hq.example/answer/tv", &town).unwrap();
        let with = startup_bml(Some(&answer));
        let script = &with[with.find("<script>").unwrap()..with.find("</script>").unwrap()];
        for bad in ["let ", "const ", "= [", "= {", "JSON", "=>", "Math."] {
            assert!(!script.contains(bad), "{bad:?} in the answer script");
        }
        assert!(script.contains("var ansUrl = \"https://hq.example/answer/tv\";"));
        assert!(script.contains("\"nvram://local/1\", \"U:4B,U:4B\""));
        assert!(!script.contains("ANSWER_") && !script.contains("CODE_NVRAM"));
        let (_, _, bad) = encoding_rs::EUC_JP.encode(&with);
        assert!(!bad, "the answer screens encode in EUC-JP");
        // No answer_url: no answer mode.
        let page = startup_bml(None);
        assert!(page.contains("var ansUrl = \"\";") && !page.contains("transmitTextDataOverIP"));
        // ECMAScript 2nd edition: no array or object literals, no let/const.
        let script = &page[page.find("<script>").unwrap()..page.find("</script>").unwrap()];
        for bad in ["let ", "const ", "= [", "= {", "JSON", "=>", "Math."] {
            assert!(!script.contains(bad), "{bad:?} in the script");
        }
        let m = startup_module(None);
        let (text, _, bad) = encoding_rs::EUC_JP.decode(&m);
        assert!(!bad, "the page encodes in EUC-JP");
        assert!(text.contains("世帯番号を入力してください"));
        assert!(text.contains("Content-Location: startup.bml"));
        // Without a number: the TV's postal code, the postal module.
        assert!(script.contains("readPersistentArray(\"nvram://receiverinfo/zipcode\", \"S:7B\")"));
        assert!(script.contains("/40/0002/zips.bin"));
        assert!(page.contains("module_ref=\"/40/0002\""));
    }
}
