//! The data-broadcasting stream's PMT entry, as ARIB TR-B14 asks of a terrestrial (A profile)
//! BML service: stream_type 0x0D, stream_identifier_descriptor with the entry component's
//! tag 0x40, data_component_descriptor with data_component_id 0x000C and its
//! additional_arib_bxml_info (entry point, auto-start, 960×540, BML 3.0) and
//! additional_arib_carousel_info.

use dvb_si::descriptors::any::DescriptorLoop;
use dvb_si::tables::pmt::{PmtStream, StreamType};
use mpeg_ts::pid::Pid;

/// The component tag of a full-segment service's entry component.
pub const ENTRY_COMPONENT_TAG: u8 = 0x40;
/// data_component_id of terrestrial digital TV data broadcasting (A profile).
pub const DATA_COMPONENT_ID: u16 = 0x000C;
/// Tag of the stream identifier descriptor.
pub const STREAM_IDENTIFIER_TAG: u8 = 0x52;
/// Tag of ARIB's data component descriptor.
pub const DATA_COMPONENT_TAG: u8 = 0xFD;
/// document_resolution 0011: 960×540 (16:9).
pub const RESOLUTION_960X540: u8 = 0b0011;

/// The ES_info descriptors of the data carousel's stream (entry component, auto-start).
pub fn data_es_info(component_tag: u8) -> Vec<u8> {
    let entry = component_tag == ENTRY_COMPONENT_TAG;
    let mut d = vec![STREAM_IDENTIFIER_TAG, 1, component_tag];
    let mut info = Vec::new();
    if entry {
        // transmission_format 00 (carousel), entry_point_flag 1, auto_start_flag 1,
        // document_resolution; use_xml 0, default_version_flag 0, independent_flag 1,
        // style_for_tv_flag 1, reserved 1111; bml_major_version 3, bml_minor_version 0.
        info.push(0b0011_0000 | RESOLUTION_960X540);
        info.push(0b0011_1111);
        info.extend_from_slice(&[0, 3, 0, 0]);
    } else {
        // transmission_format 00, entry_point_flag 0, reserved.
        info.push(0b0001_1111);
    }
    // additional_arib_carousel_info: data_event_id 0xF (unspecified), event_section_flag 1,
    // reserved 111; ondemand_retrieval_flag 1, file_storable_flag 0, start_priority 0,
    // reserved 11111.
    info.extend_from_slice(&[0xFF, 0b1001_1111]);
    d.push(DATA_COMPONENT_TAG);
    d.push((2 + info.len()) as u8);
    d.extend_from_slice(&DATA_COMPONENT_ID.to_be_bytes());
    d.extend_from_slice(&info);
    d
}

/// The PMT stream entry of a data carousel on `pid` (`es_info` from [`data_es_info`]).
pub fn data_stream(pid: u16, es_info: &[u8]) -> PmtStream<'_> {
    PmtStream::new(
        StreamType::Iso13818_6TypeD,
        Pid::new(pid),
        DescriptorLoop::new(es_info),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psi::ServiceLayout;
    use broadcast_common::Parse;
    use dvb_si::tables::pmt::PmtSection;

    #[test]
    fn entry_component_descriptors() {
        let d = data_es_info(0x40);
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "520140fd0a000c333f00030000ff9f");
    }

    #[test]
    fn pmt_carries_the_data_stream_beside_the_overlay() {
        let info = data_es_info(0x40);
        let pmt = ServiceLayout::default()
            .pmt_with(0, &[], vec![data_stream(0x0FE3, &info)])
            .unwrap();
        let parsed = PmtSection::parse(&pmt).unwrap();
        assert_eq!(parsed.streams.len(), 2);
        let s = &parsed.streams[1];
        assert_eq!(s.stream_type, StreamType::Iso13818_6TypeD);
        assert_eq!(s.elementary_pid.value(), 0x0FE3);
        assert_eq!(s.es_info.raw(), &info[..]);
    }
}
