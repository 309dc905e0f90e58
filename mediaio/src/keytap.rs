//! SRTP keys from webrtc-rs's `rtc`, which keeps its SRTP contexts to itself. A
//! connection built with a `KeyTap` as its crypto provider lets the relay (and the load
//! tool) build their own SRTP contexts and move media without rtc's per-packet pipeline
//! (measured at over half of the relay's CPU): the relay encrypts forwarded media into
//! one buffer per subscriber, the load tool decrypts what it receives.
//!
//! In rtc 0.21.1 (pinned exactly) the local context is derived first, then the remote
//! one, and nothing else calls `block_encrypt`. Callers still check the first packet of
//! each stream against rtc's own result before trusting the keys.

use std::sync::{Arc, Mutex};

use rtc_crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme, SigningKey, StreamCipher,
    StreamCipherAlgorithm,
};

/// A connection's crypto provider that remembers the first AES block operation under
/// each of the first two keys it sees: the derivations of the local, then the remote,
/// SRTP session keys from their master keys and salts (RFC 3711 4.3.3).
pub struct KeyTap {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Vec<(Vec<u8>, [u8; 16])>>,
}

impl KeyTap {
    pub fn new(inner: Arc<dyn RTCCryptoProvider>) -> Self {
        Self {
            inner,
            seen: Mutex::new(Vec::with_capacity(2)),
        }
    }

    /// Master key and salt of the local context (what this side encrypts with).
    pub fn local_master(&self, salt_len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        self.master(0, salt_len)
    }

    /// Master key and salt of the remote context (what this side decrypts with).
    pub fn remote_master(&self, salt_len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        self.master(1, salt_len)
    }

    fn master(&self, i: usize, salt_len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (key, block) = seen.get(i)?;
        // The first derivation is for label 0 with index 0: its input block is the
        // master salt, zero-padded.
        Some((key.clone(), block[..salt_len.min(16)].to_vec()))
    }
}

impl RTCCryptoProvider for KeyTap {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }
    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for KeyTap {
    fn supports(&self, a: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(a)
    }
    fn hash(&self, a: HashAlgorithm, d: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(a, d)
    }
    fn block_encrypt(
        &self,
        a: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() < 2 && block.len() == 16 && !seen.iter().any(|(k, _)| k == key) {
                let mut b = [0u8; 16];
                b.copy_from_slice(block);
                seen.push((key.to_vec(), b));
            }
        }
        self.inner.crypto().block_encrypt(a, key, block)
    }
    fn new_hmac(&self, a: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(a, key)
    }
    fn new_stream_cipher(
        &self,
        a: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn StreamCipher>, CryptoError> {
        self.inner.crypto().new_stream_cipher(a, key)
    }
    fn new_aead(&self, a: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.inner.crypto().new_aead(a, key)
    }
    fn new_cbc(&self, a: CbcAlgorithm, key: &[u8]) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(a, key)
    }
    fn start_key_exchange(
        &self,
        a: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(a)
    }
    fn generate_signing_key(&self, s: SignatureScheme) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(s)
    }
    fn import_signing_key(
        &self,
        s: SignatureScheme,
        der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(s, der)
    }
    fn verify_signature(
        &self,
        s: SignatureScheme,
        pk: PublicKey<'_>,
        m: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.crypto().verify_signature(s, pk, m, sig)
    }
}
