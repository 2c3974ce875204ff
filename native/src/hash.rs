//! blake3 (Debian's blake3 crate, with its SIMD backends) and crc32c (Castagnoli).

use crate::napi::{self, napi_callback_info, napi_env, napi_value};

/// blake3(data) -> Buffer(32)
pub unsafe extern "C" fn blake3(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let data = a.bytes(0, "data")?;
        let hash = ::blake3::hash(data.as_slice());
        napi::buffer_copy(env, hash.as_bytes())
    })
}

/// crc32c(data) -> u32
pub unsafe extern "C" fn crc32c(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let data = a.bytes(0, "data")?;
        napi::uint32(env, crc32c_of(data.as_slice()))
    })
}

/// Reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

fn crc32c_table(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(mut crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut words = data.chunks_exact(8);
    let mut c = crc as u64;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        c = _mm_crc32_u64(c, u64::from_le_bytes(b));
    }
    crc = c as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    crc
}

pub fn crc32c_of(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU supports SSE4.2, checked just above.
            return unsafe { !crc32c_sse42(!0, data) };
        }
    }
    !crc32c_table(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        assert_eq!(crc32c_of(b"123456789"), 0xE306_9283);
        assert_eq!(!crc32c_table(!0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c_of(b""), 0);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(crc32c_of(&long), !crc32c_table(!0, &long));
    }
}
