//! ADS server, State-of-the-World and Delta. (Placeholder: implemented in its own change.)
