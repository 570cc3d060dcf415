//! Name lists for synthetic residents. Names are random combinations of common
//! family and given names, so they describe no real person.
//!
//! Japanese-language households get kanji names, "family given" with a space
//! (山田 花子); easy-Japanese households get katakana names of the kind foreign
//! residents of fishing towns register (グエン ヴァン・アン); English households get
//! romanised names, also family name first (SMITH John), as a residence card prints them.
//! Every name comes with its katakana reading, as the registry keeps it for families'
//! queries (安否).

use crate::model::{AgeBand, Language};

/// A name and its reading in katakana.
type Named = (&'static str, &'static str);

/// Family names common in north-east Japan.
pub const FAMILY: [Named; 32] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("山崎", "ヤマザキ"),
    ("阿部", "アベ"),
    ("菊池", "キクチ"),
    ("千葉", "チバ"),
    ("及川", "オイカワ"),
    ("小野寺", "オノデラ"),
    ("熊谷", "クマガイ"),
    ("村上", "ムラカミ"),
    ("藤原", "フジワラ"),
    ("工藤", "クドウ"),
    ("畠山", "ハタケヤマ"),
    ("三浦", "ミウラ"),
    ("昆", "コン"),
];

// Readings differ across the lists too (蒼 ソウ beside 葵 アオイ, 裕子 ヒロコ beside
// 優子 ユウコ), so no two members of a household share a kana name either.
const GIVEN_CHILD: [Named; 12] = [
    ("蓮", "レン"),
    ("陽翔", "ハルト"),
    ("悠真", "ユウマ"),
    ("湊", "ミナト"),
    ("大和", "ヤマト"),
    ("蒼", "ソウ"),
    ("結衣", "ユイ"),
    ("陽菜", "ヒナ"),
    ("芽依", "メイ"),
    ("紬", "ツムギ"),
    ("葵", "アオイ"),
    ("凛", "リン"),
];
const GIVEN_YOUNG: [Named; 12] = [
    ("翔太", "ショウタ"),
    ("大輔", "ダイスケ"),
    ("拓也", "タクヤ"),
    ("健太", "ケンタ"),
    ("亮", "リョウ"),
    ("達也", "タツヤ"),
    ("美咲", "ミサキ"),
    ("彩", "アヤ"),
    ("愛", "アイ"),
    ("優子", "ユウコ"),
    ("沙織", "サオリ"),
    ("麻衣", "マイ"),
];
const GIVEN_MIDDLE: [Named; 12] = [
    ("浩", "ヒロシ"),
    ("誠", "マコト"),
    ("健一", "ケンイチ"),
    ("直樹", "ナオキ"),
    ("聡", "サトシ"),
    ("和也", "カズヤ"),
    ("恵子", "ケイコ"),
    ("由美", "ユミ"),
    ("裕子", "ヒロコ"),
    ("真由美", "マユミ"),
    ("美穂", "ミホ"),
    ("智子", "トモコ"),
];
const GIVEN_OLD: [Named; 12] = [
    ("清", "キヨシ"),
    ("茂", "シゲル"),
    ("勇", "イサム"),
    ("実", "ミノル"),
    ("博", "ヒロム"),
    ("正男", "マサオ"),
    ("和子", "カズコ"),
    ("幸子", "サチコ"),
    ("節子", "セツコ"),
    ("久子", "ヒサコ"),
    ("美代子", "ミヨコ"),
    ("キヨ", "キヨ"),
];

const KATAKANA_FAMILY: [Named; 6] = [
    ("グエン", "グエン"),
    ("チャン", "チャン"),
    ("レ", "レ"),
    ("サントス", "サントス"),
    ("レイエス", "レイエス"),
    ("ファム", "ファム"),
];
const KATAKANA_GIVEN: [Named; 6] = [
    ("ヴァン・アン", "ヴァン・アン"),
    ("ティ・ホア", "ティ・ホア"),
    ("ミン", "ミン"),
    ("マリア", "マリア"),
    ("ホセ", "ホセ"),
    ("ティ・ラン", "ティ・ラン"),
];
const LATIN_FAMILY: [Named; 6] = [
    ("SMITH", "スミス"),
    ("BROWN", "ブラウン"),
    ("WILSON", "ウィルソン"),
    ("TAYLOR", "テイラー"),
    ("CLARKE", "クラーク"),
    ("MURPHY", "マーフィー"),
];
const LATIN_GIVEN: [Named; 6] = [
    ("John", "ジョン"),
    ("Emily", "エミリー"),
    ("David", "デイビッド"),
    ("Sarah", "サラ"),
    ("James", "ジェームズ"),
    ("Grace", "グレース"),
];

/// A household's family name and its reading, from `pick` in 0..1.
pub fn family(language: Language, pick: f64) -> Named {
    let list: &[Named] = match language {
        Language::Japanese => &FAMILY,
        Language::EasyJapanese => &KATAKANA_FAMILY,
        Language::English => &LATIN_FAMILY,
    };
    list[index(list.len(), pick)]
}

/// A given name fitting the age band and its reading, from `pick` in 0..1: the one `pick`
/// chooses, or, when `taken` says a household member already has that name or reading,
/// the next in the list that is free (the list's first choice if none is: never for a
/// household of at most six, as every list has six names or more).
pub fn given(language: Language, band: AgeBand, pick: f64, taken: impl Fn(Named) -> bool) -> Named {
    let list: &[Named] = match (language, band) {
        (Language::EasyJapanese, _) => &KATAKANA_GIVEN,
        (Language::English, _) => &LATIN_GIVEN,
        (_, AgeBand::Child) => &GIVEN_CHILD,
        (_, AgeBand::Young) => &GIVEN_YOUNG,
        (_, AgeBand::Middle) => &GIVEN_MIDDLE,
        _ => &GIVEN_OLD,
    };
    let first = index(list.len(), pick);
    (0..list.len())
        .map(|k| list[(first + k) % list.len()])
        .find(|n| !taken(*n))
        .unwrap_or(list[first])
}

fn index(len: usize, pick: f64) -> usize {
    ((pick * len as f64) as usize).min(len - 1)
}
