import '../components.js';
