//! QR codes and the key sheet decode back to the exact CA lines (rqrr on rendered images).
