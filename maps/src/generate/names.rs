//! Name lists for synthetic residents. Names are random combinations of common
//! family and given names, so they describe no real person.
//!
//! Japanese-language households get kanji names, "family given" with a space
//! (山田 花子); easy-Japanese households get katakana names of the kind foreign
//! residents of fishing towns register (グエン ヴァン・アン); English households get
//! romanised names, also family name first (SMITH John), as a residence card prints them.

use crate::model::{AgeBand, Language};

/// Family names common in north-east Japan.
pub const FAMILY: [&str; 32] = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "斎藤",
    "清水",
    "山崎",
    "阿部",
    "菊池",
    "千葉",
    "及川",
    "小野寺",
    "熊谷",
    "村上",
    "藤原",
    "工藤",
    "畠山",
    "三浦",
    "昆",
];

const GIVEN_CHILD: [&str; 12] = [
    "蓮", "陽翔", "悠真", "湊", "大和", "蒼", "結衣", "陽菜", "芽依", "紬", "葵", "凛",
];
const GIVEN_YOUNG: [&str; 12] = [
    "翔太", "大輔", "拓也", "健太", "亮", "達也", "美咲", "彩", "愛", "優子", "沙織", "麻衣",
];
const GIVEN_MIDDLE: [&str; 12] = [
    "浩",
    "誠",
    "健一",
    "直樹",
    "聡",
    "和也",
    "恵子",
    "由美",
    "裕子",
    "真由美",
    "美穂",
    "智子",
];
const GIVEN_OLD: [&str; 12] = [
    "清",
    "茂",
    "勇",
    "実",
    "博",
    "正男",
    "和子",
    "幸子",
    "節子",
    "久子",
    "美代子",
    "キヨ",
];

const KATAKANA_FAMILY: [&str; 6] = ["グエン", "チャン", "レ", "サントス", "レイエス", "ファム"];
const KATAKANA_GIVEN: [&str; 6] = [
    "ヴァン・アン",
    "ティ・ホア",
    "ミン",
    "マリア",
    "ホセ",
    "ティ・ラン",
];
const LATIN_FAMILY: [&str; 6] = ["SMITH", "BROWN", "WILSON", "TAYLOR", "CLARKE", "MURPHY"];
const LATIN_GIVEN: [&str; 6] = ["John", "Emily", "David", "Sarah", "James", "Grace"];

/// A household's family name, from `pick` in 0..1.
pub fn family(language: Language, pick: f64) -> &'static str {
    let list: &[&'static str] = match language {
        Language::Japanese => &FAMILY,
        Language::EasyJapanese => &KATAKANA_FAMILY,
        Language::English => &LATIN_FAMILY,
    };
    choose(list, pick)
}

/// A given name fitting the age band, from `pick` in 0..1.
pub fn given(language: Language, band: AgeBand, pick: f64) -> &'static str {
    let list: &[&'static str] = match (language, band) {
        (Language::EasyJapanese, _) => &KATAKANA_GIVEN,
        (Language::English, _) => &LATIN_GIVEN,
        (_, AgeBand::Child) => &GIVEN_CHILD,
        (_, AgeBand::Young) => &GIVEN_YOUNG,
        (_, AgeBand::Middle) => &GIVEN_MIDDLE,
        _ => &GIVEN_OLD,
    };
    choose(list, pick)
}

fn choose(list: &[&'static str], pick: f64) -> &'static str {
    let i = ((pick * list.len() as f64) as usize).min(list.len() - 1);
    list[i]
}
