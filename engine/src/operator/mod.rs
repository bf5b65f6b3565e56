pub mod ipmatch;
pub mod pm;
